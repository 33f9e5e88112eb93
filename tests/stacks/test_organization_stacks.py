"""Organization-wide stacks: the member template (roles, trust, forwarding rules), the StackSet and the hub bus
policy in the core stack, the Fanout construct and the hub role's reach; each cdk-nag and cfn-lint clean."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, Aspects, Duration, Stack, Tags
from aws_cdk.assertions import Match, Template
from cdk_nag import AwsSolutionsChecks

from stacks.assembly import build
from stacks.core_stack import CoreStack
from stacks.fanout import Fanout
from stacks.member_stack import TEMPLATE_BODY_LIMIT, MemberStack, member_stack_name, member_template
from stacks.organization import reach
from stacks.platform import OpsFunction
from stacks.settings import load_settings
from tests.stacks.helpers import TEST_ENV, nag_errors, template

OU = "ou-ab12-cd34ef56"
ORG = {"enabled": True, "organizational_units": [OU], "accounts": ["111122223333"],
       "regions": ["eu-central-1", "eu-west-1"], "max_concurrency": 25}
ENABLED = ("ec2_scheduler", "sg_remediation", "key_rotation", "alerts")


@dataclass
class OrgApp:
    core: CoreStack
    member: MemberStack | None


def build_org(org: dict[str, Any] | None = None, modes: str = "enforce") -> OrgApp:
    """The core and member stacks as the assembly builds them (the automations' own stacks are not needed)."""
    automations: dict[str, Any] = {name: {"enabled": True} for name in ENABLED}
    for name in ("ec2_scheduler", "sg_remediation", "key_rotation"):
        automations[name]["mode"] = modes
    automations["alerts"]["event_rules"] = {"guardduty": 7}
    project = load_settings({"project": {"organization": org or ORG}, "automations": automations})
    app = App()
    core = CoreStack(app, "opsauto-core", project=project, env=TEST_ENV)
    member = MemberStack(app, member_stack_name(project), project=project)
    for key, value in project.tags.items():
        Tags.of(app).add(key, value)
    Aspects.of(app).add(AwsSolutionsChecks(verbose=True))
    return OrgApp(core, member)


@pytest.fixture(scope="module")
def enforce() -> OrgApp:
    return build_org()


@pytest.fixture(scope="module")
def report() -> OrgApp:
    return build_org(modes="report")


def _roles(t: Template) -> dict[str, dict[str, Any]]:
    return {r["Properties"]["RoleName"]: r for r in t.find_resources("AWS::IAM::Role").values()
            if "RoleName" in r["Properties"]}


def _actions(role: dict[str, Any]) -> set[str]:
    found: set[str] = set()
    for policy in role["Properties"].get("Policies", []):
        for statement in policy["PolicyDocument"]["Statement"]:
            action = statement["Action"]
            found.update(action if isinstance(action, list) else [action])
    return found


def test_disabled_adds_nothing_and_enabled_adds_the_member_stack() -> None:
    assembly = build({"project": {}, "automations": {}}, env=TEST_ENV)
    assert assembly.member is None and assembly.core.organization is None
    core = template(assembly.core)
    core.resource_count_is("AWS::CloudFormation::StackSet", 0)
    core.resource_count_is("AWS::Events::EventBusPolicy", 0)
    nothing = build({"project": {"organization": ORG}, "automations": {}}, env=TEST_ENV)
    assert nothing.member is None  # no automation acts in or listens to member accounts: nothing to deploy
    template(nothing.core).resource_count_is("AWS::CloudFormation::StackSet", 0)
    member = MemberStack(App(), "opsauto-member", project=load_settings(
        {"project": {"organization": ORG}, "automations": {"alerts": {"enabled": True}}}))
    assert set(template(member).find_resources("AWS::IAM::Role")) != set()  # alerts: forwarding only
    assert nag_errors(member) == []


def test_a_member_role_per_automation_that_only_the_hub_role_may_assume(enforce: OrgApp) -> None:
    assert enforce.member is not None
    roles = _roles(template(enforce.member))
    assert set(roles) == {"opsauto-member-ec2-scheduler", "opsauto-member-sg-remediation",
                          "opsauto-member-key-rotation"}  # alerts only receives: no role
    for automation, role in (("ec2-scheduler", roles["opsauto-member-ec2-scheduler"]),
                             ("key-rotation", roles["opsauto-member-key-rotation"])):
        [statement] = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
        assert statement["Action"] == "sts:AssumeRole"
        principal = json.dumps(statement["Principal"])
        assert '"Ref": "HubAccountId"' in principal and ":root" in principal
        hub_role = json.dumps(statement["Condition"]["ArnEquals"]["aws:PrincipalArn"])
        assert '"Ref": "HubAccountId"' in hub_role and f":role/opsauto-{automation}-hub" in hub_role
        assert statement["Condition"]["StringEquals"] == {"aws:PrincipalOrgID": {"Ref": "OrganizationId"}}
        assert role["Condition"] == "IsPrimaryRegion"  # IAM is global: one region's instance holds the roles


def test_member_roles_carry_the_automations_statements(enforce: OrgApp, report: OrgApp) -> None:
    assert report.member is not None and enforce.member is not None
    enforced = _roles(template(enforce.member))
    assert {"ec2:StartInstances", "ec2:StopInstances", "rds:StopDBInstance", "ec2:DescribeInstances"} <= _actions(
        enforced["opsauto-member-ec2-scheduler"])
    assert "ec2:RevokeSecurityGroupIngress" in _actions(enforced["opsauto-member-sg-remediation"])
    assert {"iam:UpdateAccessKey", "iam:DeleteAccessKey"} <= _actions(enforced["opsauto-member-key-rotation"])
    writes = ("Start", "Stop", "Create", "Revoke", "Update", "Delete", "Add", "Tag")
    for name, role in _roles(template(report.member)).items():
        changing = {a for a in _actions(role) if a.split(":")[1].startswith(writes)}
        assert changing == set(), f"{name} in report mode may change {changing}"
    sg_text = json.dumps(enforced["opsauto-member-sg-remediation"]["Properties"]["Policies"])
    assert '"aws:RequestedRegion": ["eu-central-1", "eu-west-1"]' in sg_text
    assert '"aws:ResourceTag/AutoRemediate": "false"' in sg_text


def test_forwarding_rules_send_what_the_hub_acts_on_to_its_bus(enforce: OrgApp) -> None:
    assert enforce.member is not None
    t = template(enforce.member)
    rules = {r["Properties"]["Description"].split(": ")[1].split(" ->")[0]: r
             for r in t.find_resources("AWS::Events::Rule").values()}
    assert {"SecurityGroupChanges", "AlarmStateChanges", "GuardDutyFindings", "HealthEvents"} <= set(rules)
    assert rules["SecurityGroupChanges"]["Properties"]["EventPattern"]["detail"]["eventName"] == [
        "AuthorizeSecurityGroupIngress", "ModifySecurityGroupRules", "CreateSecurityGroup"]
    assert rules["AlarmStateChanges"]["Properties"]["EventPattern"] == {
        "source": ["aws.cloudwatch"], "detail-type": ["CloudWatch Alarm State Change"]}
    for rule in rules.values():
        assert rule["Condition"] == "IsNotHubAccount"
        [target] = rule["Properties"]["Targets"]
        arn = json.dumps(target["Arn"])
        assert '"Ref": "HubRegion"' in arn and '"Ref": "HubAccountId"' in arn and ":event-bus/default" in arn
        assert "RoleArn" in target
    t.has_resource_properties("AWS::IAM::Policy", {"PolicyDocument": {"Statement": [
        Match.object_like({"Action": "events:PutEvents"})]}})


def test_member_template_has_no_assets_and_no_bootstrap(enforce: OrgApp) -> None:
    assert enforce.member is not None
    body = json.dumps(template(enforce.member).to_json())
    assert "cdk-bootstrap" not in body and "BootstrapVersion" not in body and "S3Bucket" not in body
    params = template(enforce.member).to_json()["Parameters"]
    assert set(params) == {"HubAccountId", "HubRegion", "OrganizationId", "PrimaryRegion"}
    assert set(template(enforce.member).to_json()["Outputs"]) == {"HubEventBusArn", "TrustedOrganizationId"}
    assert params["PrimaryRegion"]["Default"] == "eu-central-1"


def test_the_stackset_deploys_the_member_template_to_the_ous(enforce: OrgApp) -> None:
    core = template(enforce.core)
    [stack_set] = core.find_resources("AWS::CloudFormation::StackSet").values()
    props = stack_set["Properties"]
    assert props["PermissionModel"] == "SERVICE_MANAGED"
    assert props["AutoDeployment"] == {"Enabled": True, "RetainStacksOnAccountRemoval": False}
    assert props["Capabilities"] == ["CAPABILITY_NAMED_IAM"]
    assert props["CallAs"] == {"Ref": "StackSetCallAs"}
    assert props["StackInstancesGroup"] == [{"DeploymentTargets": {"OrganizationalUnitIds": [OU]},
                                             "Regions": ["eu-central-1", "eu-west-1"]}]
    parameters = {p["ParameterKey"]: p["ParameterValue"] for p in props["Parameters"]}
    assert parameters["HubAccountId"] == {"Ref": "AWS::AccountId"}
    assert parameters["OrganizationId"]["Fn::GetAtt"][1] == "Organization.Id"
    assert len(props["TemplateBody"].encode()) < TEMPLATE_BODY_LIMIT
    assert enforce.member is not None
    assert json.loads(props["TemplateBody"]) == template(enforce.member).to_json()  # the same as cdk deploy's


def test_the_hub_bus_admits_the_organization_only(enforce: OrgApp) -> None:
    [policy] = template(enforce.core).find_resources("AWS::Events::EventBusPolicy").values()
    statement = policy["Properties"]["Statement"]
    assert statement["Action"] == "events:PutEvents" and statement["Principal"] == "*"
    assert statement["Condition"]["StringEquals"]["aws:PrincipalOrgID"]["Fn::GetAtt"][1] == "Organization.Id"


def test_accounts_without_ous_get_no_stackset() -> None:
    assembly = build_org({"enabled": True, "accounts": ["111122223333"]})
    template(assembly.core).resource_count_is("AWS::CloudFormation::StackSet", 0)
    assert assembly.member is not None  # deployed with `cdk deploy opsauto-member` in each account
    assert "Default" not in template(assembly.member).to_json()["Parameters"]["PrimaryRegion"]


def test_nag_clean(enforce: OrgApp, report: OrgApp) -> None:
    for assembly in (enforce, report):
        assert assembly.member is not None
        assert nag_errors(assembly.member) == []
        assert nag_errors(assembly.core) == []


def test_cfn_lint_clean(enforce: OrgApp, tmp_path: Path) -> None:
    from cfnlint.api import lint_all

    assert enforce.member is not None
    for stack in (enforce.core, enforce.member):
        errors = [str(m) for m in lint_all(json.dumps(template(stack).to_json()))
                  if m.rule.id[0] in "EW"]
        assert errors == [], stack.stack_name


# --------------------------------------------------------------------------- Fanout construct and reach()


@pytest.fixture(scope="module")
def fanout_stack() -> tuple[Stack, Template]:
    project = load_settings({"project": {"organization": ORG}})
    app = App()
    core = CoreStack(app, "core", project=project, env=TEST_ENV)
    stack = Stack(app, "fanout-test", env=TEST_ENV)
    ops = OpsFunction(stack, "Fn", automation="ec2_scheduler", project=project, core=core.core,
                      description="test", timeout=Duration.seconds(120))
    Fanout(stack, "Fanout", ops=ops, project=project, core=core.core, automation="ec2_scheduler",
           timeout=Duration.seconds(120))
    reach(ops, project, "ec2_scheduler")
    alerts = OpsFunction(stack, "AlertsFn", automation="alerts", project=project, core=core.core, description="test")
    reach(alerts, project, "alerts", assume=False)
    Aspects.of(app).add(AwsSolutionsChecks())
    return stack, template(stack)


def test_fanout_queue_dlq_and_event_source(fanout_stack: tuple[Stack, Template]) -> None:
    _, t = fanout_stack
    t.has_resource_properties("AWS::Lambda::EventSourceMapping", {
        "BatchSize": 1,
        "ScalingConfig": {"MaximumConcurrency": 25},
        "FunctionResponseTypes": ["ReportBatchItemFailures"],
    })
    queues = t.find_resources("AWS::SQS::Queue")
    [work] = [q for q in queues.values() if "RedrivePolicy" in q["Properties"]]
    assert work["Properties"]["RedrivePolicy"]["maxReceiveCount"] == 3
    assert work["Properties"]["SqsManagedSseEnabled"] is True
    assert work["Properties"]["VisibilityTimeout"] == 720
    t.has_resource_properties("AWS::DynamoDB::Table", {
        "TimeToLiveSpecification": {"AttributeName": "expires", "Enabled": True},
        "BillingMode": "PAY_PER_REQUEST"})
    [env] = [f["Properties"]["Environment"]["Variables"] for f in t.find_resources("AWS::Lambda::Function").values()
             if "WORK_QUEUE_URL" in f["Properties"]["Environment"]["Variables"]]
    assert {"WORK_QUEUE_URL", "RUN_TABLE_NAME", "WORK_MAX_RECEIVES", "RUN_DEADLINE_SECONDS"} <= set(env)
    assert env["WORK_MAX_RECEIVES"] == "3"
    alarms = [a["Properties"]["AlarmDescription"] for a in t.find_resources("AWS::CloudWatch::Alarm").values()]
    assert any("work items" in text for text in alarms)


def test_reach_names_the_hub_role_and_lets_it_assume_the_member_role(fanout_stack: tuple[Stack, Template]) -> None:
    stack, t = fanout_stack
    t.has_resource_properties("AWS::IAM::Role", {"RoleName": "opsauto-ec2-scheduler-hub"})
    t.has_resource_properties("AWS::IAM::Policy", {"PolicyDocument": {"Statement": Match.array_with([
        Match.object_like({"Sid": "AssumeMemberRole", "Action": "sts:AssumeRole", "Resource": {"Fn::Join": [
            "", ["arn:", {"Ref": "AWS::Partition"}, ":iam::*:role/opsauto-member-ec2-scheduler"]]}}),
        Match.object_like({"Sid": "ListOrganizationAccounts"}),
    ])}})
    assert nag_errors(stack) == []
    statements = [s for p in t.find_resources("AWS::IAM::Policy").values()
                  for s in p["Properties"]["PolicyDocument"]["Statement"]]
    assert sum(1 for s in statements if s.get("Sid") == "AssumeMemberRole") == 1  # alerts reads names only
    assert sum(1 for s in statements if s.get("Sid") == "ListOrganizationAccounts") == 2
    assert len([r for r in t.find_resources("AWS::IAM::Role").values() if "RoleName" in r["Properties"]]) == 1


def test_member_template_synthesizes_alone() -> None:
    project = load_settings({"project": {"organization": ORG}, "automations": {"sg_remediation": {"enabled": True}}})
    body = member_template(project)
    assert [k for k, v in body["Resources"].items() if v["Type"] == "AWS::IAM::Role" and "RoleName" in v[
        "Properties"]] != []


CHECKOV = Path(__file__).resolve().parents[2] / ".venv" / "checkov" / "bin" / "checkov"


def test_checkov_clean(enforce: OrgApp, fanout_stack: tuple[Stack, Template], tmp_path: Path) -> None:
    """checkov over what only an organization-wide synth makes (make test scans the single-account app): the
    core stack with the StackSet and bus policy, the member template, a fan-out's queue and run table. A
    finding is fixed or skipped in the resource's metadata with a reason (stacks.checkov)."""
    import subprocess

    assert CHECKOV.exists(), f"{CHECKOV} is missing: run `make install`"
    assert enforce.member is not None
    files = []
    for name, body in (("core", template(enforce.core).to_json()), ("member", template(enforce.member).to_json()),
                       ("fanout", fanout_stack[1].to_json())):
        path = tmp_path / f"{name}.template.json"
        path.write_text(json.dumps(body))
        files += ["-f", str(path)]
    result = subprocess.run([str(CHECKOV), "--quiet", "--compact", "--skip-download", "--framework",
                             "cloudformation", "--output", "json", *files],
                            capture_output=True, text=True, timeout=600, check=False)
    reports = json.loads(result.stdout or "[]")
    failed = [f"{check['check_id']} {check['resource']} ({check['file_path']})"
              for report in (reports if isinstance(reports, list) else [reports])
              for check in report.get("results", {}).get("failed_checks", [])]
    assert failed == [], failed
    assert result.returncode == 0, result.stderr[-2000:]
