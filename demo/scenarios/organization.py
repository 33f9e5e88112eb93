"""organization: one hub, three member accounts in two OUs, two regions (AWS Organizations on moto).

The hub (the demo's account) is the Organization's management account. OU ``workloads`` holds ``prod`` and
``staging``, OU ``sandbox`` holds ``sandbox``; each holds the member roles the member stack (StackSet) would
create. The functions come from the synthesized assets with the environment the stacks write when
``project.organization`` is enabled (the targets, and for ec2_scheduler the work queue and run table its
Fanout construct creates, made here in moto):

1. one scheduled ec2_scheduler run at 18:05 Berlin: the scheduled invocation lists the accounts under the OUs
   and sends one work item per (account, region); each is handed to the function as the queue's event source
   mapping would, and stops that target's office instances with the member role; one summary report;
2. someone opens SSH to the world on a security group in ``staging``: the CloudTrail event, forwarded to the
   hub's bus by the member stack's rule, is remediated in ``staging`` with its member role.
"""

from __future__ import annotations

import json
import os
from typing import Any
from unittest import mock

from demo.harness import ACCOUNT, ROOT, DemoContext, DemoFailure, sqs_records

TITLE = "3 member accounts, 2 OUs, 2 regions: one scheduler run, one forwarded SG change"
USES = ("ec2_scheduler", "sg_remediation")

REGIONS = ("eu-central-1", "eu-west-1")
ROLE_BASE = "opsauto-member"
ADMIN_ROLE = "OrganizationAccountAccessRole"  # what Organizations creates in every new account
SCHEDULES = {"office": {"timezone": "Europe/Berlin", "periods": [{"days": "mon-fri", "start": "08:00",
                                                                  "stop": "18:00"}]}}
RUN_AT = "2026-11-30T17:05:00Z"  # Monday 18:05 in Berlin
# (account name, OU, {region: tagged office instances})
ACCOUNTS = [("prod", "workloads", {"eu-central-1": 3, "eu-west-1": 1}),
            ("staging", "workloads", {"eu-west-1": 2}),
            ("sandbox", "sandbox", {"eu-central-1": 1})]


class Org:
    """The Organization and clients in its member accounts (through the access role Organizations creates)."""

    def __init__(self, ctx: DemoContext) -> None:
        self.ctx = ctx
        self.orgs = ctx.client("organizations")
        self.orgs.create_organization(FeatureSet="ALL")
        self.root = self.orgs.list_roots()["Roots"][0]["Id"]
        self.units: dict[str, str] = {}
        self.ids: dict[str, str] = {}
        self._credentials: dict[str, dict[str, str]] = {}

    def unit(self, name: str) -> str:
        if name not in self.units:
            self.units[name] = self.orgs.create_organizational_unit(ParentId=self.root, Name=name)[
                "OrganizationalUnit"]["Id"]
        return self.units[name]

    def account(self, name: str, unit: str) -> str:
        status = self.orgs.create_account(AccountName=name, Email=f"{name}@example.com")["CreateAccountStatus"]
        account = str(status["AccountId"])
        self.orgs.move_account(AccountId=account, SourceParentId=self.root, DestinationParentId=self.unit(unit))
        self.ids[name] = account
        trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                         "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}}]}
        for automation in USES:  # what the member stack creates
            self.client("iam", name).create_role(RoleName=f"{ROLE_BASE}-{automation.replace('_', '-')}",
                                                 AssumeRolePolicyDocument=json.dumps(trust))
        return account

    def client(self, service: str, name: str, region: str | None = None) -> Any:
        account = self.ids[name]
        if account not in self._credentials:
            credentials = self.ctx.client("sts").assume_role(
                RoleArn=f"arn:aws:iam::{account}:role/{ADMIN_ROLE}", RoleSessionName="demo-setup")["Credentials"]
            self._credentials[account] = {"aws_access_key_id": credentials["AccessKeyId"],
                                          "aws_secret_access_key": credentials["SecretAccessKey"],
                                          "aws_session_token": credentials["SessionToken"]}
        import boto3

        session: Any = boto3
        return session.client(service, region_name=region or self.ctx.region, **self._credentials[account])

    def label(self, name: str) -> str:
        return f"{name} ({self.ids[name]})"


def _target_env(org: Org, automation: str) -> dict[str, str]:
    return {"TARGET_ACCOUNTS": "organization", "TARGET_OUS": ",".join(org.units.values()),
            "MEMBER_ROLE_NAME": f"{ROLE_BASE}-{automation.replace('_', '-')}", "REGIONS": ",".join(REGIONS)}


def _states(org: Org, name: str, region: str) -> dict[str, str]:
    reservations = org.client("ec2", name, region).describe_instances()["Reservations"]
    return {i["InstanceId"]: i["State"]["Name"] for r in reservations for i in r["Instances"]}


def run(ctx: DemoContext) -> str:
    with mock.patch.dict(os.environ, {"MOTO_EC2_LOAD_DEFAULT_AMIS": "false"}):
        org = Org(ctx)
        for name, unit, _ in ACCOUNTS:
            org.account(name, unit)
        ctx.say("Organization: " + "; ".join(
            f"OU {unit}: " + ", ".join(org.label(n) for n, u, _ in ACCOUNTS if u == unit) for unit in org.units))
        stopped = _scheduler_run(ctx, org)
        revoked = _forwarded_change(ctx, org)
    return f"one run stopped {stopped} instances in 3 accounts x 2 regions (one report); {revoked} in staging"


def _scheduler_run(ctx: DemoContext, org: Org) -> int:
    office: dict[tuple[str, str], list[str]] = {}
    for name, _, per_region in ACCOUNTS:
        for region, count in per_region.items():
            ec2 = org.client("ec2", name, region)
            office[(name, region)] = [i["InstanceId"] for i in ec2.run_instances(
                ImageId="ami-12c6146b", MinCount=count, MaxCount=count, InstanceType="t3.micro",
                TagSpecifications=[{"ResourceType": "instance", "Tags": [
                    {"Key": "Schedule", "Value": "office"}]}])["Instances"]]
    spare = org.client("ec2", "sandbox", "eu-west-1").run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1)
    untagged = spare["Instances"][0]["InstanceId"]
    total = sum(len(ids) for ids in office.values())
    ctx.say(f"{total} running 'office' instances across the accounts, 1 untagged in sandbox eu-west-1")

    # What the ec2_scheduler stack's Fanout construct creates: the work queue and the run table.
    queue_url = ctx.client("sqs").create_queue(QueueName="opsauto-ec2-scheduler-work")["QueueUrl"]
    ctx.client("dynamodb").create_table(
        TableName="opsauto-ec2-scheduler-runs", BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "run", "KeyType": "HASH"}, {"AttributeName": "item", "KeyType": "RANGE"}],
        AttributeDefinitions=[{"AttributeName": "run", "AttributeType": "S"},
                              {"AttributeName": "item", "AttributeType": "S"}])
    env = ctx.function_env("ec2_scheduler", SCHEDULES=json.dumps(SCHEDULES), **_target_env(org, "ec2_scheduler"),
                           WORK_QUEUE_URL=queue_url, RUN_TABLE_NAME="opsauto-ec2-scheduler-runs",
                           WORK_MAX_RECEIVES="3", RUN_DEADLINE_SECONDS="3600")
    event = json.loads((ROOT / "tests" / "events" / "ec2_scheduler" / "scheduler_invoke.json").read_text()
                       .replace("us-east-1", ctx.region))
    event["time"] = RUN_AT
    dispatched = ctx.invoke("ec2_scheduler", event, env)
    records = sqs_records(queue_url)
    ctx.say(f"18:05 Berlin: the scheduled invocation sent {dispatched['targets']} work items "
            f"({dispatched['accounts']} accounts x {len(REGIONS)} regions)")
    for record in records:  # the event source mapping: one work item per invocation
        response = ctx.invoke("ec2_scheduler", {"Records": [record]}, env)
        if response.get("batchItemFailures"):
            raise DemoFailure(f"a work item failed: {response}")
    for (name, region), ids in sorted(office.items()):
        states = _states(org, name, region)
        if any(states[i] != "stopped" for i in ids):
            raise DemoFailure(f"{name} {region}: office instances not stopped: {states}")
        ctx.say(f"  {org.label(name)} {region}: stopped {len(ids)} with its member role")
    if _states(org, "sandbox", "eu-west-1")[untagged] != "running":
        raise DemoFailure("an untagged instance was touched")
    reports = [r for r in ctx.reports() if r["metadata"]["additionalContext"].get("automation") == "ec2_scheduler"]
    if len(reports) != 1:
        raise DemoFailure(f"expected one summary report for the run, got {len(reports)}")
    (ctx.out_dir / "scheduler-run-report.json").write_text(json.dumps(reports[0], indent=2) + "\n")
    ctx.say(f"report: {reports[0]['content']['title']}")
    return total


def _forwarded_change(ctx: DemoContext, org: Org) -> str:
    region = "eu-west-1"
    ec2 = org.client("ec2", "staging", region)
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    group = ec2.create_security_group(GroupName="web", Description="web servers", VpcId=vpc)["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]},
        {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    rules = {(r["FromPort"]): r["SecurityGroupRuleId"] for r in ec2.describe_security_group_rules(
        Filters=[{"Name": "group-id", "Values": [group]}])["SecurityGroupRules"] if not r["IsEgress"]}
    staging = org.ids["staging"]
    ctx.say(f"{org.label('staging')} {region}: someone opens SSH and HTTPS to the world on {group}")
    text = (ROOT / "tests" / "events" / "sg_remediation" / "authorize_ingress_world.json").read_text()
    for old, new in (("sg-0123456789abcdef0", group), ("us-east-1", region), (ACCOUNT, staging),
                     ("sgr-0aaaaaaaaaaaaaaa1", rules[22]), ("sgr-0aaaaaaaaaaaaaaa2", rules[443])):
        text = text.replace(old, new)
    event = json.loads(text)  # as the member stack's rule forwards it: the member's account and region
    env = ctx.function_env("sg_remediation", **_target_env(org, "sg_remediation"))
    result = ctx.invoke("sg_remediation", event, env)
    left = {r["FromPort"] for r in ec2.describe_security_group_rules(
        Filters=[{"Name": "group-id", "Values": [group]}])["SecurityGroupRules"]
        if not r["IsEgress"] and r.get("CidrIpv4") == "0.0.0.0/0"}
    if result.get("revoked") != [rules[22]] or left != {443}:
        raise DemoFailure(f"the forwarded change was not remediated in staging: {result}, open: {left}")
    reports = [r for r in ctx.reports() if r["metadata"]["additionalContext"].get("automation") == "sg_remediation"]
    if len(reports) != 1 or staging not in json.dumps(reports[0]["metadata"]["relatedResources"]):
        raise DemoFailure(f"expected one report naming the staging group, got {reports}")
    (ctx.out_dir / "forwarded-change-report.json").write_text(json.dumps(reports[0], indent=2) + "\n")
    ctx.say(f"hub: the forwarded event was remediated in staging: SSH revoked, HTTPS kept (allowed port); "
            f"report: {reports[0]['content']['title']}")
    return "SSH revoked"
