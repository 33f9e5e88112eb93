"""sg_remediation: a group opened to the world on 22 and 443, then the CloudTrail event of that change.

The scenario authorizes the ingress in the embedded EC2 (moto), builds the EventBridge "AWS API Call via
CloudTrail" event for it from the test fixture (group and rule ids, region filled in), invokes the function
from the synthesized asset, and checks: SSH from 0.0.0.0/0 revoked, HTTPS from 0.0.0.0/0 and SSH from
10.0.0.0/8 kept, one action report naming who made the change. Then it replays the same event (nothing
revoked twice, no second report) and sends a failed call's event (ignored, not retried). Last, a second
group opened to the world on RDP and a periodic sweep in report mode: it reports the rule it would revoke
and changes nothing.
"""

from __future__ import annotations

import json
from typing import Any

from demo.harness import ROOT, DemoContext, DemoFailure

TITLE = "SG opened to the world on 22 + 443 -> CloudTrail event -> 22 revoked, 443 kept"

EVENTS = ROOT / "tests" / "events" / "sg_remediation"
FIXTURE_GROUP = "sg-0123456789abcdef0"


def _event(name: str, group_id: str, region: str, rule_ids: dict[str, str] | None = None) -> dict[str, Any]:
    text = (EVENTS / name).read_text().replace(FIXTURE_GROUP, group_id).replace("us-east-1", region)
    for placeholder, real in (rule_ids or {}).items():
        text = text.replace(placeholder, real)
    event: dict[str, Any] = json.loads(text)
    return event


def _ingress(ec2: Any, group_id: str) -> list[dict[str, Any]]:
    rules = ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [group_id]}])
    return [rule for rule in rules["SecurityGroupRules"] if not rule["IsEgress"]]


def _label(rule: dict[str, Any]) -> str:
    ports = rule["FromPort"] if rule["FromPort"] == rule["ToPort"] else f"{rule['FromPort']}-{rule['ToPort']}"
    return f"{rule['IpProtocol']} {ports} from {rule.get('CidrIpv4') or rule.get('CidrIpv6')}"


def run(ctx: DemoContext) -> str:
    ec2 = ctx.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    group = ec2.create_security_group(GroupName="web", Description="web servers", VpcId=vpc)["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22,
         "IpRanges": [{"CidrIp": "0.0.0.0/0"}, {"CidrIp": "10.0.0.0/8"}]},
        {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]},
    ])
    before = _ingress(ec2, group)
    by_port = {(r["FromPort"], r.get("CidrIpv4")): r["SecurityGroupRuleId"] for r in before}
    ssh, https = by_port[(22, "0.0.0.0/0")], by_port[(443, "0.0.0.0/0")]
    ctx.say(f"{group} (web) in {vpc}: " + "; ".join(_label(r) for r in before))

    env = ctx.function_env("sg_remediation")
    event = _event("authorize_ingress_world.json", group, ctx.region,
                   {"sgr-0aaaaaaaaaaaaaaa1": ssh, "sgr-0aaaaaaaaaaaaaaa2": https})
    result = ctx.invoke("sg_remediation", event, env)
    after = _ingress(ec2, group)
    kept = sorted(_label(r) for r in after)
    revoked = sorted(_label(r) for r in before if r["SecurityGroupRuleId"] not in {a["SecurityGroupRuleId"]
                                                                                   for a in after})
    ctx.say(f"AuthorizeSecurityGroupIngress event by {event['detail']['userIdentity']['arn']} "
            f"from {event['detail']['sourceIPAddress']}")
    ctx.say(f"revoked: {', '.join(revoked) or 'nothing'}; kept: {', '.join(kept)}")
    if result["revoked"] != [ssh] or revoked != ["tcp 22 from 0.0.0.0/0"]:
        raise DemoFailure(f"expected only SSH from 0.0.0.0/0 revoked, got {revoked} (result {result})")
    if kept != ["tcp 22 from 10.0.0.0/8", "tcp 443 from 0.0.0.0/0"]:
        raise DemoFailure(f"expected 443 from the world and 22 from 10.0.0.0/8 kept, got {kept}")

    reports = [r for r in ctx.reports() if r["metadata"]["additionalContext"].get("automation") == "sg_remediation"]
    if len(reports) != 1:
        raise DemoFailure(f"expected one action report, got {len(reports)}")
    report = reports[0]
    context = report["metadata"]["additionalContext"]
    if context.get("actor") != event["detail"]["userIdentity"]["arn"] or context.get("groupId") != group:
        raise DemoFailure(f"the report does not name the group and who made the change: {context}")
    ctx.out_dir.mkdir(parents=True, exist_ok=True)
    (ctx.out_dir / "action-report.json").write_text(json.dumps(report, indent=2) + "\n")
    ctx.say(f"report: {report['content']['title']!r} (saved as action-report.json)")
    for line in report["content"]["description"].splitlines():
        if line.strip():
            ctx.say(f"  | {line}")

    published = len(ctx.reports())
    replay = ctx.invoke("sg_remediation", event, env)
    if replay["revoked"] or len(ctx.reports()) != published:
        raise DemoFailure(f"the replayed event changed something: {replay}")
    ctx.say("replayed the same event: nothing revoked, no second report")

    failed = ctx.invoke("sg_remediation", _event("authorize_ingress_failed.json", group, ctx.region), env)
    if failed.get("trigger") != "ignored":
        raise DemoFailure(f"a failed API call's event was not ignored: {failed}")
    ctx.say(f"a failed call's event (errorCode Client.InvalidPermission.Duplicate): ignored ({failed['ignored']})")

    _report_mode_sweep(ctx, ec2, vpc, env)
    return ("SSH from 0.0.0.0/0 revoked, HTTPS kept, one report naming the actor; replay and failed call: no-ops; "
            "report-mode sweep changed nothing")


def _report_mode_sweep(ctx: DemoContext, ec2: Any, vpc: str, env: dict[str, str]) -> None:
    admin = ec2.create_security_group(GroupName="admin", Description="jump hosts", VpcId=vpc)["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=admin, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 3389, "ToPort": 3389, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    before = _ingress(ec2, admin)
    published = len(ctx.reports())
    sweep = ctx.invoke("sg_remediation", _event("scheduled_sweep.json", admin, ctx.region),
                       {**env, "MODE": "report"})
    if _ingress(ec2, admin) != before or sweep["revoked"] or len(ctx.reports()) <= published:
        raise DemoFailure(f"the report-mode sweep changed something or reported nothing: {sweep}")
    ctx.say(f"report-mode sweep over {sweep['groupsChecked']} groups: would revoke RDP from 0.0.0.0/0 on {admin} "
            f"({len(sweep['reported'])} reported), revoked nothing")
