"""key_rotation stack: secrets, their encryption and rotation schedules, the sweep rule, the role's scope."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk.assertions import Match, Template

from stacks.settings import SettingsError, load_settings
from tests.stacks.helpers import build_with, nag_errors
from tests.stacks.helpers import policy_statements as statements
from tests.stacks.helpers import statement_actions as actions_of

MANAGED = [
    {"user_name": "ci-deployer"},
    {"user_name": "reporting", "rotation_days": 60, "path": "/apps/", "secret_name": "apps/reporting-key"},
]


@pytest.fixture(scope="module")
def built() -> dict[str, Any]:
    """Three builds in one process (after the first they are quick): enforce with exemptions, report (the
    default) with one managed user, and the defaults (no managed user: the sweep alone)."""
    enforce = build_with("key_rotation", {"managed_users": MANAGED, "mode": "enforce", "exempt_group": "break-glass",
                                          "exempt_tag": "key-rotation=exempt", "grace_days": 5})
    report = build_with("key_rotation", {"managed_users": MANAGED[:1]})
    sweep_only = build_with("key_rotation", {})
    stacks = {"enforce": enforce.stacks["key_rotation"], "report": report.stacks["key_rotation"],
              "sweep_only": sweep_only.stacks["key_rotation"]}
    return {"stacks": stacks, "templates": {k: Template.from_stack(v) for k, v in stacks.items()}}


def resource_text(statement: dict[str, Any]) -> str:
    return str(statement["Resource"])


def test_secret_per_managed_user_encrypted_with_the_stacks_key(built: dict[str, Any]) -> None:
    template = built["templates"]["enforce"]
    template.resource_count_is("AWS::SecretsManager::Secret", 2)
    template.has_resource_properties("AWS::KMS::Key", {"EnableKeyRotation": True})
    (key_id,) = template.find_resources("AWS::KMS::Key")
    for name, user in (("opsauto/key-rotation/ci-deployer", "ci-deployer"), ("apps/reporting-key", "reporting")):
        template.has_resource_properties(
            "AWS::SecretsManager::Secret",
            {"Name": name, "KmsKeyId": {"Fn::GetAtt": [key_id, "Arn"]}, "SecretString": f'{{"UserName":"{user}"}}'},
        )


def test_rotation_schedules_use_the_function(built: dict[str, Any]) -> None:
    template = built["templates"]["enforce"]
    (function_id,) = template.find_resources("AWS::Lambda::Function")
    schedules = template.find_resources("AWS::SecretsManager::RotationSchedule")
    expressions = sorted(s["Properties"]["RotationRules"]["ScheduleExpression"] for s in schedules.values())
    assert expressions == ["rate(30 days)", "rate(60 days)"]
    for schedule in schedules.values():
        assert schedule["Properties"]["RotationLambdaARN"] == {"Fn::GetAtt": [function_id, "Arn"]}
        assert schedule["Properties"].get("RotateImmediatelyOnUpdate", True) is True  # the first key, at once
    template.has_resource_properties(
        "AWS::Lambda::Permission", {"Principal": "secretsmanager.amazonaws.com", "Action": "lambda:InvokeFunction"}
    )


def test_sweep_rule_and_environment(built: dict[str, Any]) -> None:
    template = built["templates"]["enforce"]
    template.has_resource_properties(
        "AWS::Events::Rule",
        {"ScheduleExpression": "rate(1 day)", "Targets": [Match.object_like(
            {"RetryPolicy": {"MaximumRetryAttempts": 2, "MaximumEventAgeInSeconds": 21600},
             "DeadLetterConfig": Match.any_value()})]},
    )
    template.has_resource_properties(
        "AWS::Lambda::Function",
        {"Timeout": 300, "Environment": {"Variables": Match.object_like({
            "MODE": "enforce", "WARN_AFTER_DAYS": "80", "DEACTIVATE_AFTER_DAYS": "90", "DELETE_AFTER_DAYS": "120",
            "GRACE_DAYS": "5", "EXEMPT_GROUP": "break-glass", "EXEMPT_TAG": "key-rotation=exempt",
            "MAX_CHANGES": "20", "NOTIFY_TOPIC_ARN": Match.any_value(), "MANAGED_SECRETS": Match.any_value()})}},
    )
    built["templates"]["report"].has_resource_properties(
        "AWS::Lambda::Function", {"Environment": {"Variables": Match.object_like({"MODE": "report"})}}
    )


def test_rotation_key_actions_only_on_the_managed_users(built: dict[str, Any]) -> None:
    for mode in ("enforce", "report"):
        for statement in statements(built["templates"][mode]):
            acts = actions_of(statement)
            if "iam:CreateAccessKey" in acts:
                text = resource_text(statement)
                assert ":user/ci-deployer" in text and "user/*" not in text and statement["Resource"] != "*"
                if mode == "enforce":
                    assert ":user/apps/reporting" in text
    rotation = [s for s in statements(built["templates"]["enforce"]) if s.get("Sid") == "RotateManagedUsersKeys"]
    assert len(rotation) == 1 and len(rotation[0]["Resource"]) == 2


def test_report_mode_cannot_change_keys_outside_the_managed_users(built: dict[str, Any]) -> None:
    def changers(mode: str) -> list[str]:
        return [resource_text(s) for s in statements(built["templates"][mode])
                if {"iam:UpdateAccessKey", "iam:DeleteAccessKey"} & set(actions_of(s))]

    assert all("user/*" not in text for text in changers("report"))
    assert any("user/*" in text for text in changers("enforce"))


def test_wildcards_are_only_the_expected_ones(built: dict[str, Any]) -> None:
    star = sorted(a for s in statements(built["templates"]["enforce"]) if s["Resource"] == "*" for a in actions_of(s))
    assert star == ["iam:GenerateCredentialReport", "iam:GetCredentialReport", "iam:ListUsers",
                    "secretsmanager:GetRandomPassword", "xray:PutTelemetryRecords", "xray:PutTraceSegments"]


def test_the_sweep_may_read_the_credential_report_in_both_modes(built: dict[str, Any]) -> None:
    """Above credential_report_users users the sweep takes last use from the IAM credential report."""
    for mode in ("enforce", "report", "sweep_only"):
        [statement] = [s for s in statements(built["templates"][mode]) if s.get("Sid") == "ReadCredentialReport"]
        assert sorted(actions_of(statement)) == ["iam:GenerateCredentialReport", "iam:GetCredentialReport"]
        assert statement["Resource"] == "*"  # neither action has a resource-level permission


def test_secrets_manager_actions_only_on_managed_secrets(built: dict[str, Any]) -> None:
    for statement in statements(built["templates"]["enforce"]):
        acts = [a for a in actions_of(statement)
                if a.startswith("secretsmanager:") and a != "secretsmanager:GetRandomPassword"]
        if acts:
            assert "Secret" in resource_text(statement) and statement["Resource"] != "*"


def test_cdk_nag_clean(built: dict[str, Any]) -> None:
    for stack in built["stacks"].values():
        assert nag_errors(stack) == []


def test_without_managed_users_only_the_sweep_is_deployed(built: dict[str, Any]) -> None:
    template = built["templates"]["sweep_only"]
    for absent in ("AWS::KMS::Key", "AWS::SecretsManager::Secret", "AWS::SecretsManager::RotationSchedule"):
        template.resource_count_is(absent, 0)
    template.resource_count_is("AWS::Events::Rule", 1)
    assert not [s for s in statements(template) if "iam:CreateAccessKey" in actions_of(s)]
    template.has_resource_properties(
        "AWS::Lambda::Function", {"Environment": {"Variables": Match.object_like({"MANAGED_SECRETS": "{}"})}}
    )


# --------------------------------------------------------------------------- settings (no synth)


def _load(settings: dict[str, Any]) -> Any:
    return load_settings({"automations": {"key_rotation": settings}}).automations.key_rotation


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"warn_after_days": 90}, "warn_after_days < deactivate_after_days < delete_after_days"),
        ({"delete_after_days": 90}, "warn_after_days < deactivate_after_days < delete_after_days"),
        ({"mode": "fix"}, "automations.key_rotation.mode: got 'fix'; allowed values: 'report' or 'enforce'"),
        ({"exempt_tag": "novalue"}, "automations.key_rotation.exempt_tag: must be 'Key=Value'"),
        ({"sweep_schedule": "daily"}, "automations.key_rotation.sweep_schedule: must be an EventBridge schedule"),
        ({"managed_users": [{"user_name": "a"}, {"user_name": "a"}]}, "listed more than once: a"),
        ({"managed_users": [{"user_name": "bad name"}]}, "automations.key_rotation.managed_users.0.user_name"),
        ({"managed_users": [{"user_name": "a", "rotation_days": 5}]},
         "rotation_days of a (5) must be at least 2 x grace_days + 2 (16)"),
        ({"max_changes": -1}, "automations.key_rotation.max_changes"),
        ({"grace": 3}, "automations.key_rotation.grace: unknown setting"),
    ],
)
def test_bad_settings_fail_with_the_key_named(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(SettingsError) as error:
        _load(settings)
    assert message in str(error.value)


def test_defaults() -> None:
    value = _load({})
    assert (value.mode, value.grace_days, value.warn_after_days, value.deactivate_after_days,
            value.delete_after_days, value.max_changes, value.sweep_schedule) == (
        "report", 7, 80, 90, 120, 20, "rate(1 day)")
    assert _load({"sweep_schedule": "cron(0 6 * * ? *)"}).sweep_schedule == "cron(0 6 * * ? *)"


def test_function_uses_the_secrets_key_only_through_secrets_manager(built: dict[str, Any]) -> None:
    template = built["templates"]["enforce"]
    (key,) = template.find_resources("AWS::KMS::Key").values()
    (role_id,) = [k for k in template.find_resources("AWS::IAM::Role") if k.startswith("KeyRotationRole")]
    role_statements = [s for s in key["Properties"]["KeyPolicy"]["Statement"]
                       if s["Principal"].get("AWS") == {"Fn::GetAtt": [role_id, "Arn"]}]
    assert role_statements
    for statement in role_statements:
        assert statement["Condition"]["StringEquals"]["kms:ViaService"].startswith("secretsmanager.")
    outputs = template.to_json()["Outputs"]
    assert {"SecretArn0", "SecretArn1", "SecretsKeyArn"} <= set(outputs)


# --------------------------------------------------------------------------- organization-wide

ORG = {"enabled": True, "organizational_units": ["ou-ab12-cd34ef56"], "accounts": ["111122223333"],
       "regions": ["eu-central-1", "eu-west-1"], "max_concurrency": 15}


@pytest.fixture(scope="module")
def org_built() -> dict[str, Any]:
    built = {mode: build_with("key_rotation", {"managed_users": MANAGED[:1], "mode": mode}, project={
        "organization": ORG}) for mode in ("enforce", "report")}
    return {mode: {"assembly": a, "stack": a.stacks["key_rotation"], "template": Template.from_stack(
        a.stacks["key_rotation"])} for mode, a in built.items()}


def _function_env(template: Template) -> dict[str, Any]:
    [variables] = [f["Properties"]["Environment"]["Variables"]
                   for f in template.find_resources("AWS::Lambda::Function").values()
                   if "MANAGED_SECRETS" in f["Properties"]["Environment"]["Variables"]]
    return dict(variables)


def test_organization_wide_the_sweep_fans_out_one_account_at_a_time(org_built: dict[str, Any]) -> None:
    template = org_built["enforce"]["template"]
    env = _function_env(template)
    assert env["TARGET_ACCOUNTS"] == "organization,111122223333"
    assert env["TARGET_OUS"] == "ou-ab12-cd34ef56"
    assert env["MEMBER_ROLE_NAME"] == "opsauto-member-key-rotation"
    assert "REGIONS" not in env  # IAM is global: one target per account, in the function's own region
    assert {"WORK_QUEUE_URL", "RUN_TABLE_NAME", "WORK_MAX_RECEIVES", "RUN_DEADLINE_SECONDS"} <= set(env)
    template.has_resource_properties("AWS::Lambda::EventSourceMapping", {
        "BatchSize": 1, "ScalingConfig": {"MaximumConcurrency": 15},
        "FunctionResponseTypes": ["ReportBatchItemFailures"]})
    template.has_resource_properties("AWS::IAM::Role", {"RoleName": "opsauto-key-rotation-hub"})
    template.has_resource_properties("AWS::IAM::Policy", {"PolicyDocument": {"Statement": Match.array_with([
        Match.object_like({"Sid": "AssumeMemberRole", "Action": "sts:AssumeRole", "Resource": {"Fn::Join": [
            "", ["arn:", {"Ref": "AWS::Partition"}, ":iam::*:role/opsauto-member-key-rotation"]]}})])}})
    # The sweep's schedule and the rotation schedule still invoke the same function.
    template.resource_count_is("AWS::SecretsManager::RotationSchedule", 1)
    template.has_resource_properties("AWS::Events::Rule", {"ScheduleExpression": "rate(1 day)"})
    for mode in ("enforce", "report"):
        assert nag_errors(org_built[mode]["stack"]) == []


def test_without_the_organization_nothing_of_the_fanout_is_added(built: dict[str, Any]) -> None:
    template = built["templates"]["enforce"]
    template.resource_count_is("AWS::Lambda::EventSourceMapping", 0)
    template.resource_count_is("AWS::DynamoDB::Table", 0)
    env = _function_env(template)
    assert not {"TARGET_ACCOUNTS", "WORK_QUEUE_URL", "MEMBER_ROLE_NAME"} & set(env)


def _member_role(assembly: Any) -> dict[str, Any]:
    assert assembly.member is not None
    [role] = [r for r in Template.from_stack(assembly.member).find_resources("AWS::IAM::Role").values()
              if r["Properties"].get("RoleName") == "opsauto-member-key-rotation"]
    return dict(role)


def _role_actions(role: dict[str, Any]) -> dict[str, set[str]]:
    return {s["Sid"]: set(actions_of(s)) for p in role["Properties"]["Policies"] for s in p["PolicyDocument"][
        "Statement"]}


def test_member_role_has_the_sweeps_statements_and_is_read_only_in_report_mode(org_built: dict[str, Any]) -> None:
    enforce = _role_actions(_member_role(org_built["enforce"]["assembly"]))
    report = _role_actions(_member_role(org_built["report"]["assembly"]))
    reads = {"ListUsers": {"iam:ListUsers"},
             "ReadEveryUsersKeys": {"iam:ListAccessKeys", "iam:GetAccessKeyLastUsed", "iam:ListUserTags"},
             "ReadCredentialReport": {"iam:GenerateCredentialReport", "iam:GetCredentialReport"}}
    assert report == reads
    # enforce: deactivate and delete, and the record of a deactivation (a tag on the user) the sweep writes first
    assert enforce == {**reads, "RetireStaleKeys": {"iam:UpdateAccessKey", "iam:DeleteAccessKey", "iam:TagUser",
                                                    "iam:UntagUser"}}
    # No rotation in member accounts: no key is created there, no secret read.
    every = set().union(*enforce.values())
    assert "iam:CreateAccessKey" not in every and not any(a.startswith("secretsmanager:") for a in every)
    trust = json.dumps(_member_role(org_built["enforce"]["assembly"])["Properties"]["AssumeRolePolicyDocument"])
    assert ":role/opsauto-key-rotation-hub" in trust and "aws:PrincipalOrgID" in trust
