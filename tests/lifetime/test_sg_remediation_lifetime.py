"""sg_remediation over 30 simulated days (2 in ``make test``): hourly sweeps, CloudTrail events, people, faults.

What happens, seeded and replayable:

- an hourly sweep (EventBridge scheduled event) over two regions, delivered as an asynchronous invocation
  (Lambda retries it twice, then keeps an on-failure record);
- between sweeps people change rules at random minutes: world (``0.0.0.0/0``, ``::/0``), private and
  narrow public CIDRs, customer-managed prefix lists (one holds ``0.0.0.0/0``; another gets a world entry added
  and removed now and then), a security-group reference; TCP and UDP ports and ranges, ICMP / ICMPv6 types
  (Path MTU discovery among them), ``-1``; ingress and egress; some rules tagged with the exempt tag; they
  create and delete groups, modify rules to the world, revoke rules by hand. Every rule change in the stack's
  region reaches the function as the EventBridge "AWS API Call via CloudTrail" event of that call
  (AuthorizeSecurityGroupIngress / Egress, ModifySecurityGroupRules, CreateSecurityGroup). The settings are
  the shipped defaults (``allowed_public_ports`` ``80,443,icmp:3:4,icmpv6:2``) with two regions and
  ``egress: report``;
- a protected group whose revoke is always denied (UnauthorizedOperation, as an SCP would), an exempt group
  (``AutoRemediate=false``), throttling bursts (RequestLimitExceeded) on the describe and revoke calls, a
  region that cannot be described for some hours, groups and rules deleted by a person between the
  function's describe and its revoke.

Invariants, after every step:

- after every sweep no world-open rule on a non-allowed port remains in any group that is not exempt, except
  those reported as failed (a SecurityGroupRemediationFailed report naming the rule or its region, or the
  sweep's event kept as an on-failure record after Lambda's retries);
- after every sweep every world-open finding left in place (exempt group or rule, egress) is named in that
  sweep's reports;
- no other rule is ever removed: every rule the function removed was a finding of the policy (as this test
  computes it, independently of the function) that is not exempt and not egress, and appears in a revoke report;
- a world-open finding added by a call that reached the function as a CloudTrail event is closed by that
  event's invocation (unless its group is exempt, protected, deleted, or the invocation was kept as failed);
- only transient errors reach the on-failure destination (a denied revoke is reported, not retried forever).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from demo.harness import OpsTopicTap
from stacks.settings.sg_remediation import SgRemediationSettings
from tests.lifetime.kit import (
    ACCOUNT,
    EC2_THROTTLING,
    Fault,
    FaultInjector,
    LambdaRuntime,
    SimClock,
    Simulation,
    cloudtrail_event,
    is_long,
    scheduled_event,
)

pytestmark = pytest.mark.lifetime

DAYS = 30 if is_long() else 2
SEED = 1212
EAST, WEST = "us-east-1", "eu-west-1"  # events arrive from EAST (the stack's region); the sweep covers both
REGIONS = (EAST, WEST)
START = dt.datetime(2026, 6, 1, 0, 0, tzinfo=dt.UTC)
EXEMPT_KEY, EXEMPT_VALUE = "AutoRemediate", "false"
ALLOWED_TCP = frozenset({80, 443})  # the shipped default, as this test reads it: 80,443,icmp:3:4,icmpv6:2
MAX_RULES_PER_GROUP = 40
WORLD = ("0.0.0.0/0", "::/0")
PORTS = (22, 23, 53, 80, 443, 3306, 3389, 5432, 6379, 8080, 8443, 9200)


# --------------------------------------------------------------------------- the policy, as this test reads it


def world_open(rule: dict[str, Any], prefix_entries: dict[str, set[str]]) -> bool:
    if rule.get("CidrIpv4") in WORLD or rule.get("CidrIpv6") in WORLD:
        return True
    return bool(prefix_entries.get(rule.get("PrefixListId", ""), set()) & set(WORLD))


def allowed(rule: dict[str, Any]) -> bool:
    protocol, low, high = rule["IpProtocol"], rule.get("FromPort", -1), rule.get("ToPort", -1)
    if protocol == "tcp":
        return all(port in ALLOWED_TCP for port in range(low, high + 1))
    if protocol == "icmp":
        return (low, high) == (3, 4)  # fragmentation needed
    if protocol in ("58", "icmpv6"):
        return low == 2  # packet too big, any code
    return False


def verdict(rule: dict[str, Any], group_exempt: bool, prefix_entries: dict[str, set[str]]) -> str | None:
    """``close`` (the function must revoke it), ``report`` (a finding it must leave and report), or None."""
    if not world_open(rule, prefix_entries) or allowed(rule):
        return None
    rule_exempt = any(tag["Key"] == EXEMPT_KEY and tag["Value"].lower() == EXEMPT_VALUE
                      for tag in rule.get("Tags", []))
    return "report" if group_exempt or rule_exempt or rule["IsEgress"] else "close"


# --------------------------------------------------------------------------- the account and its people


@dataclass
class GroupInfo:
    group_id: str
    region: str
    name: str
    exempt: bool = False
    protected: bool = False
    dynamic: bool = False


@dataclass
class Invocation:
    """What one function invocation (with its retries) did."""

    kind: str  # sweep | event
    before: dict[str, dict[str, Any]]
    after: dict[str, dict[str, Any]]
    reports: list[dict[str, Any]]
    kept_as_failed: bool
    deleted_in_flight: set[str] = field(default_factory=set)  # rule ids a person removed during the run
    added_rule_ids: set[str] = field(default_factory=set)  # event: the rules the reported call added

    def of(self, event_type: str) -> list[dict[str, Any]]:
        return [r for r in self.reports if r["metadata"]["eventType"] == event_type]

    def revoked_in_reports(self) -> set[str]:
        return {rule["ruleId"] for report in self.of("SecurityGroupIngressRevoked")
                for rule in json.loads(report["metadata"]["additionalContext"]["revokedRules"])}

    def failures_in_reports(self) -> list[dict[str, Any]]:
        return [failure for report in self.of("SecurityGroupRemediationFailed")
                for failure in json.loads(report["metadata"]["additionalContext"]["failures"])]


@dataclass
class Account:
    sim: Simulation
    faults: FaultInjector
    runtime: LambdaRuntime
    tap: OpsTopicTap
    ec2: dict[str, Any]
    vpcs: dict[str, str]
    prefix_lists: dict[str, dict[str, str]]  # region -> {"office": id, "partners": id}
    prefix_entries: dict[str, set[str]]  # prefix list id -> its CIDRs now
    groups: dict[str, GroupInfo] = field(default_factory=dict)
    last: Invocation | None = None
    in_flight: set[str] = field(default_factory=set)
    figures: dict[str, int] = field(default_factory=lambda: {
        "sweeps": 0, "events": 0, "people_actions": 0, "revoked": 0, "failure_reports": 0,
        "kept_as_failed": 0, "deleted_in_flight": 0, "throttle_bursts": 0,
    })

    def verdict(self, rule: dict[str, Any]) -> str | None:
        info = self.groups.get(rule["GroupId"])
        return verdict(rule, info is not None and info.exempt, self.prefix_entries)

    # -- reading the account (never faulted)
    def rules(self) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        for region in REGIONS:
            for page in self.ec2[region].get_paginator("describe_security_group_rules").paginate():
                for rule in page["SecurityGroupRules"]:
                    found[rule["SecurityGroupRuleId"]] = rule
        return found

    def live_groups(self, region: str | None = None) -> list[GroupInfo]:
        return [g for g in self.groups.values() if region is None or g.region == region]

    # -- the function
    def invoke(self, kind: str, event: dict[str, Any], added: set[str] | None = None) -> Invocation:
        before = self.rules()
        self.in_flight = set()
        kept = len(self.runtime.failures)
        with self.faults.active():
            self.runtime.invoke_async(event)
        invocation = Invocation(kind, before, self.rules(), self.tap.messages(),
                                kept_as_failed=len(self.runtime.failures) > kept,
                                deleted_in_flight=set(self.in_flight), added_rule_ids=added or set())
        self.figures["kept_as_failed"] += invocation.kept_as_failed
        self.figures["revoked"] += len(invocation.revoked_in_reports())
        self.figures["failure_reports"] += len(invocation.of("SecurityGroupRemediationFailed"))
        self.last = invocation
        return invocation

    def sweep(self) -> None:
        self.figures["sweeps"] += 1
        self.invoke("sweep", scheduled_event(self.sim.clock.now, region=EAST))

    # -- people
    def create_group(self, region: str, *, exempt: bool = False, protected: bool = False,
                     dynamic: bool = True) -> GroupInfo:
        name = f"{'app' if dynamic else 'fixed'}-{uuid.UUID(int=self.sim.rng.getrandbits(128)).hex[:8]}"
        kwargs: dict[str, Any] = {"GroupName": name, "Description": name, "VpcId": self.vpcs[region]}
        if exempt:
            kwargs["TagSpecifications"] = [{"ResourceType": "security-group",
                                            "Tags": [{"Key": EXEMPT_KEY, "Value": EXEMPT_VALUE}]}]
        group_id = self.ec2[region].create_security_group(**kwargs)["GroupId"]
        info = GroupInfo(group_id, region, name, exempt=exempt, protected=protected, dynamic=dynamic)
        self.groups[group_id] = info
        if region == EAST and dynamic:
            self.deliver(cloudtrail_event(self.sim.clock.now, "CreateSecurityGroup",
                                          {"groupName": name, "groupDescription": name, "vpcId": self.vpcs[region]},
                                          response_elements={"requestId": str(uuid.uuid4()), "_return": True,
                                                             "groupId": group_id}, region=region), set())
        return info

    def delete_group(self, info: GroupInfo) -> None:
        self.ec2[info.region].delete_security_group(GroupId=info.group_id)
        self.groups.pop(info.group_id, None)

    def random_permission(self, info: GroupInfo) -> dict[str, Any]:
        rng = self.sim.rng
        source = rng.choices(["world4", "world6", "private", "narrow", "prefix", "group"],
                             weights=[40, 20, 15, 5, 10, 10])[0]
        protocol = rng.choices(["tcp", "udp", "icmp", "-1"], weights=[60, 15, 12, 13])[0]
        permission: dict[str, Any] = {"IpProtocol": protocol}
        if protocol in ("tcp", "udp"):
            low = rng.choice(PORTS)
            shape = rng.random()
            high = low if shape < 0.6 else min(65535, low + rng.randint(1, 2000)) if shape < 0.9 else 65535
            if shape >= 0.97:
                low = 0
            permission.update(FromPort=low, ToPort=high)
        elif protocol == "icmp":
            icmp_type, code = rng.choice([(-1, -1), (3, 4), (8, 0), (0, -1), (11, 0)])
            permission.update(FromPort=icmp_type, ToPort=code)
            if source == "world6":
                permission["IpProtocol"] = "58"  # ICMPv6 goes with an IPv6 source
        if source == "world4":
            permission["IpRanges"] = [{"CidrIp": "0.0.0.0/0"}]
        elif source == "world6":
            permission["Ipv6Ranges"] = [{"CidrIpv6": "::/0"}]
        elif source == "private":
            permission["IpRanges"] = [{"CidrIp": f"10.{rng.randint(0, 255)}.0.0/16"}]
        elif source == "narrow":
            permission["IpRanges"] = [{"CidrIp": str(ipaddress.ip_network(f"203.0.113.{rng.randint(0, 255)}/32"))}]
        elif source == "prefix":
            name = rng.choice(["office", "partners"])
            permission["PrefixListIds"] = [{"PrefixListId": self.prefix_lists[info.region][name]}]
        else:
            others = [g for g in self.live_groups(info.region) if g.group_id != info.group_id]
            peer = rng.choice(others) if others else info
            permission["UserIdGroupPairs"] = [{"GroupId": peer.group_id}]
        return permission

    def authorize(self, info: GroupInfo) -> None:
        ingress = [r for r in self.rules().values() if r["GroupId"] == info.group_id and not r["IsEgress"]]
        if len(ingress) >= MAX_RULES_PER_GROUP:
            victim = self.sim.rng.choice(ingress)
            self.ec2[info.region].revoke_security_group_ingress(
                GroupId=info.group_id, SecurityGroupRuleIds=[victim["SecurityGroupRuleId"]])
            self.sim.note(f"person revoked {victim['SecurityGroupRuleId']} by hand (group full)")
            return
        permission = self.random_permission(info)
        egress = self.sim.rng.random() < 0.12
        kwargs: dict[str, Any] = {"GroupId": info.group_id, "IpPermissions": [permission]}
        if self.sim.rng.random() < 0.06:
            kwargs["TagSpecifications"] = [{"ResourceType": "security-group-rule", "Tags": [
                {"Key": EXEMPT_KEY, "Value": self.sim.rng.choice([EXEMPT_VALUE, EXEMPT_VALUE.upper()])}]}]
        client = self.ec2[info.region]
        try:
            call = client.authorize_security_group_egress if egress else client.authorize_security_group_ingress
            response = call(**kwargs)
        except ClientError as exc:
            self.sim.note(f"person's authorize refused: {exc.response['Error']['Code']}")  # a duplicate
            return
        added = response.get("SecurityGroupRules", [])
        self.sim.note(f"person authorized {'egress' if egress else 'ingress'} {json.dumps(permission)} on "
                      f"{info.group_id}{' (rule tagged exempt)' if 'TagSpecifications' in kwargs else ''}")
        if info.region == EAST:
            self.deliver(authorize_event(self.sim.clock.now, info, permission, added, egress=egress),
                         {rule["SecurityGroupRuleId"] for rule in added})

    def toggle_world_in_office_list(self) -> None:
        """Someone adds 0.0.0.0/0 to the office prefix list (or takes it out again); no event reaches the function."""
        region = self.sim.rng.choice(REGIONS)
        list_id = self.prefix_lists[region]["office"]
        entries = self.prefix_entries[list_id]
        change = {"RemoveEntries": [{"Cidr": "0.0.0.0/0"}]} if "0.0.0.0/0" in entries else {
            "AddEntries": [{"Cidr": "0.0.0.0/0", "Description": "temporary"}]}
        self.ec2[region].modify_managed_prefix_list(PrefixListId=list_id, PrefixListName="office", **change)
        entries ^= {"0.0.0.0/0"}
        self.sim.note(f"person {'added' if 'AddEntries' in change else 'removed'} 0.0.0.0/0 in {list_id}")

    def modify_to_world(self, info: GroupInfo) -> None:
        """ModifySecurityGroupRules: a private IPv4 TCP rule's source becomes 0.0.0.0/0."""
        private = [r for r in self.rules().values() if r["GroupId"] == info.group_id and not r["IsEgress"]
                   and r["IpProtocol"] == "tcp" and str(r.get("CidrIpv4", "")).startswith("10.")]
        if not private:
            return self.authorize(info)
        rule = self.sim.rng.choice(private)
        update = {"IpProtocol": "tcp", "FromPort": rule["FromPort"], "ToPort": rule["ToPort"],
                  "CidrIpv4": "0.0.0.0/0", "Description": ""}
        try:
            self.ec2[info.region].modify_security_group_rules(GroupId=info.group_id, SecurityGroupRules=[
                {"SecurityGroupRuleId": rule["SecurityGroupRuleId"], "SecurityGroupRule": update}])
        except ClientError as exc:
            self.sim.note(f"person's modify refused: {exc.response['Error']['Code']}")
            return None
        self.sim.note(f"person opened {rule['SecurityGroupRuleId']} on {info.group_id} to the world")
        if info.region == EAST:
            request = {"ModifySecurityGroupRulesRequest": {"GroupId": info.group_id, "SecurityGroupRule": {
                "SecurityGroupRuleId": rule["SecurityGroupRuleId"], "SecurityGroupRule": update, "tag": 1}}}
            response = {"ModifySecurityGroupRulesResponse": {"xmlns": "http://ec2.amazonaws.com/doc/2016-11-15/",
                                                             "requestId": str(uuid.uuid4()), "return": True}}
            self.deliver(cloudtrail_event(self.sim.clock.now, "ModifySecurityGroupRules", request,
                                          response_elements=response, region=info.region),
                         {rule["SecurityGroupRuleId"]})
        return None

    def deliver(self, event: dict[str, Any], added: set[str]) -> None:
        self.figures["events"] += 1
        self.invoke("event", event, added)
        self.sim.check(f"CloudTrail {event['detail']['eventName']}")

    def act(self) -> None:
        """One person's change somewhere in the account."""
        self.figures["people_actions"] += 1
        rng = self.sim.rng
        roll = rng.random()
        region = EAST if rng.random() < 0.75 else WEST
        dynamic = [g for g in self.live_groups(region) if g.dynamic]
        if roll < 0.02:
            self.toggle_world_in_office_list()
        elif roll < 0.07 or not dynamic:
            self.create_group(region)
        elif roll < 0.10 and len(dynamic) > 2:
            victim = rng.choice(dynamic)
            self.delete_group(victim)
            self.sim.note(f"person deleted {victim.group_id}")
        elif roll < 0.22:
            self.modify_to_world(rng.choice(dynamic))
        else:
            self.authorize(rng.choice(self.live_groups(region)))

    # -- faults
    def plan_faults(self, hour_start: dt.datetime) -> None:
        rng = self.sim.rng
        if rng.random() < 0.08:  # a throttling burst on one of the calls the function makes
            operation = rng.choice(["ec2.DescribeSecurityGroupRules", "ec2.DescribeSecurityGroups",
                                    "ec2.RevokeSecurityGroupIngress"])
            times = rng.choice([1, 2, 2, 3, 4])  # 3 or more outlast Lambda's two retries of one sweep
            self.faults.add(Fault(operation, **EC2_THROTTLING, regions=[rng.choice(REGIONS)], times=times,
                                  start=hour_start, end=hour_start + dt.timedelta(hours=1)))
            self.figures["throttle_bursts"] += 1
            self.sim.note(f"fault: {operation} throttled {times} times this hour")
        if rng.random() < 0.2:  # a person deletes a group between the function's describe and its revoke
            self.faults.add(Fault("ec2.RevokeSecurityGroupIngress", "unused", when=self._delete_in_flight,
                                  start=hour_start, end=hour_start + dt.timedelta(hours=1)))
        if rng.random() < 0.01:  # one region cannot be described for a few hours
            self.faults.add(Fault("ec2.DescribeSecurityGroups", "UnauthorizedOperation", status=403,
                                  message="You are not authorized to perform this operation.", regions=[WEST],
                                  start=hour_start, end=hour_start + dt.timedelta(hours=rng.randint(2, 8))))
            self.sim.note("fault: eu-west-1 cannot be described for some hours")

    def _delete_in_flight(self, params: dict[str, Any]) -> bool:
        """Revoke is about to be called: a person deletes the group (or one of the rules) first."""
        info = self.groups.get(str(params.get("GroupId")))
        if info is None or self.in_flight:
            return False
        with self.faults.paused():
            return self._person_deletes(info, params)

    def _person_deletes(self, info: GroupInfo, params: dict[str, Any]) -> bool:
        rule_ids = list(params.get("SecurityGroupRuleIds") or [])
        doomed = {rid for rid, rule in self.rules().items() if rule["GroupId"] == info.group_id}
        if info.dynamic and self.sim.rng.random() < 0.5:
            self.delete_group(info)
            self.sim.note(f"person deleted {info.group_id} while the function was about to revoke")
        elif rule_ids:
            doomed = {self.sim.rng.choice(rule_ids)}
            self.ec2[info.region].revoke_security_group_ingress(GroupId=info.group_id,
                                                                 SecurityGroupRuleIds=sorted(doomed))
            self.sim.note(f"person revoked {doomed} while the function was about to")
        else:
            return False
        self.in_flight |= doomed
        self.figures["deleted_in_flight"] += 1
        return False  # the real call goes ahead and meets the deletion


def authorize_event(when: dt.datetime, info: GroupInfo, permission: dict[str, Any],
                    added: list[dict[str, Any]], *, egress: bool = False) -> dict[str, Any]:
    """The CloudTrail record of AuthorizeSecurityGroupIngress (or Egress) as EventBridge delivers it."""
    def items(key: str, name: str, values: list[dict[str, Any]]) -> dict[str, Any]:
        return {"items": [{name: value[key]} for value in values]} if values else {}

    item = {
        "ipProtocol": permission["IpProtocol"],
        **({"fromPort": permission["FromPort"], "toPort": permission["ToPort"]} if "FromPort" in permission else {}),
        "groups": items("GroupId", "groupId", permission.get("UserIdGroupPairs", [])),
        "ipRanges": items("CidrIp", "cidrIp", permission.get("IpRanges", [])),
        "ipv6Ranges": items("CidrIpv6", "cidrIpv6", permission.get("Ipv6Ranges", [])),
        "prefixListIds": items("PrefixListId", "prefixListId", permission.get("PrefixListIds", [])),
    }
    rule_set = []
    for rule in added:
        entry: dict[str, Any] = {"groupOwnerId": ACCOUNT, "groupId": rule["GroupId"],
                                 "securityGroupRuleId": rule["SecurityGroupRuleId"], "isEgress": egress,
                                 "ipProtocol": rule["IpProtocol"], "fromPort": rule.get("FromPort", -1),
                                 "toPort": rule.get("ToPort", -1)}
        for key, name in (("CidrIpv4", "cidrIpv4"), ("CidrIpv6", "cidrIpv6"), ("PrefixListId", "prefixListId")):
            if rule.get(key):
                entry[name] = rule[key]
        if rule.get("ReferencedGroupInfo"):
            entry["referencedGroupInfo"] = {"groupId": rule["ReferencedGroupInfo"]["GroupId"], "userId": ACCOUNT}
        rule_set.append(entry)
    return cloudtrail_event(when, "AuthorizeSecurityGroupEgress" if egress else "AuthorizeSecurityGroupIngress",
                            {"groupId": info.group_id, "ipPermissions": {"items": [item]}},
                            response_elements={"requestId": str(uuid.uuid4()), "_return": True,
                                               "securityGroupRuleSet": {"items": rule_set}},
                            region=info.region)


# --------------------------------------------------------------------------- invariants


def sweep_leaves_only_reported_failures(account: Account) -> list[str]:
    last = account.last
    if last is None or last.kind != "sweep" or last.kept_as_failed:
        return []
    failures = last.failures_in_reports()
    failed_rules = {rule_id for failure in failures for rule_id in failure["ruleIds"]}
    failed_regions = {failure["region"] for failure in failures if not failure["groupId"]}
    problems = []
    for rule_id, rule in last.after.items():
        if account.verdict(rule) != "close":
            continue
        region = account.groups[rule["GroupId"]].region if rule["GroupId"] in account.groups else "?"
        if rule_id in failed_rules or region in failed_regions:
            continue
        problems.append(f"{rule_id} in {rule['GroupId']} ({region}) is still open and not reported as failed: "
                        f"{json.dumps(rule, default=str)}")
    return problems


def findings_left_are_reported(account: Account) -> list[str]:
    last = account.last
    if last is None or last.kind != "sweep" or last.kept_as_failed:
        return []
    named = {rule["ruleId"] for report in last.of("SecurityGroupIngressFinding")
             for group in json.loads(report["metadata"]["additionalContext"]["findings"]) for rule in group["rules"]}
    failures = last.failures_in_reports()
    named |= {rule_id for failure in failures for rule_id in failure["ruleIds"]}
    failed_regions = {failure["region"] for failure in failures if not failure["groupId"]}
    return [f"{rule_id} ({rule['GroupId']}) is a finding left in place but no report names it"
            for rule_id, rule in last.after.items()
            if account.verdict(rule) == "report" and rule_id not in named
            and account.groups.get(rule["GroupId"], GroupInfo("", "?", "")).region not in failed_regions]


def nothing_else_removed(account: Account) -> list[str]:
    last = account.last
    if last is None:
        return []
    gone_groups = {rule["GroupId"] for rule in last.before.values()} - {
        rule["GroupId"] for rule in last.after.values()} - set(account.groups)
    removed = {rid for rid in set(last.before) - set(last.after)
               if rid not in last.deleted_in_flight and last.before[rid]["GroupId"] not in gone_groups}
    problems = [f"{rid} removed but it is not a finding to close: {json.dumps(last.before[rid], default=str)}"
                for rid in sorted(removed) if account.verdict(last.before[rid]) != "close"]
    reported = last.revoked_in_reports()
    if removed - reported:
        problems.append(f"removed without a revoke report: {sorted(removed - reported)}")
    if reported - removed - last.deleted_in_flight:
        problems.append(f"reported as revoked but still there: {sorted(reported - removed)}")
    return problems


def event_closes_what_it_reports(account: Account) -> list[str]:
    last = account.last
    if last is None or last.kind != "event" or last.kept_as_failed:
        return []
    protected = {g.group_id for g in account.groups.values() if g.protected}
    failed = {rule_id for failure in last.failures_in_reports() for rule_id in failure["ruleIds"]}
    return [f"{rid} added by the reported call is still open" for rid in sorted(last.added_rule_ids)
            if rid in last.after and rid not in failed and last.after[rid]["GroupId"] not in protected
            and account.verdict(last.after[rid]) == "close"]


def only_transient_errors_kept(account: Account) -> list[str]:
    return [f"on-failure record for a permanent error: {record.payload['responsePayload']['errorMessage']}"
            for record in account.runtime.failures if "RequestLimitExceeded" not in
            record.payload["responsePayload"]["errorMessage"]]


# --------------------------------------------------------------------------- the lifetime


@pytest.fixture
def account(monkeypatch: pytest.MonkeyPatch) -> Iterator[Account]:
    from sg_remediation import handler as sg_handler
    from shared.observability import logger

    level = logger.log_level
    logger.setLevel("CRITICAL")  # thousands of invocations: keep the output to the invariants' messages
    with mock_aws(), FaultInjector() as faults:
        clock = SimClock(START)
        faults.clock = clock
        sim = Simulation(seed=SEED, clock=clock)
        tap = OpsTopicTap(EAST)
        settings = SgRemediationSettings(enabled=True, regions=list(REGIONS), egress="report")
        env = {**settings.function_environment(), "NOTIFY_TOPIC_ARN": tap.topic_arn,
               "POWERTOOLS_SERVICE_NAME": "sg_remediation"}
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        ec2 = {region: boto3.client("ec2", region_name=region) for region in REGIONS}
        vpcs = {region: ec2[region].create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"] for region in REGIONS}
        lists = {"office": ["198.51.100.0/24"], "partners": ["192.0.2.0/24", "0.0.0.0/0"]}
        prefix_lists = {region: {name: ec2[region].create_managed_prefix_list(
            PrefixListName=name, MaxEntries=5, AddressFamily="IPv4",
            Entries=[{"Cidr": cidr, "Description": name} for cidr in cidrs])["PrefixList"]["PrefixListId"]
            for name, cidrs in lists.items()} for region in REGIONS}
        prefix_entries = {ids[name]: set(cidrs) for ids in prefix_lists.values() for name, cidrs in lists.items()}
        runtime = LambdaRuntime(sg_handler.handler, function_name="opsauto-sg-remediation")
        try:
            yield Account(sim, faults, runtime, tap, ec2, vpcs, prefix_lists, prefix_entries)
        finally:
            clock.stop()
            logger.setLevel(level)


def test_sg_remediation_lifetime(account: Account) -> None:
    wall = time.perf_counter()
    sim = account.sim
    sim.invariants.update({
        "after every sweep no world-open rule on a non-allowed port remains, except those reported as failed":
            lambda: sweep_leaves_only_reported_failures(account),
        "after every sweep every finding left in place (exempt, egress) is named in its reports":
            lambda: findings_left_are_reported(account),
        "no other rule is ever removed, and every removal is in a revoke report":
            lambda: nothing_else_removed(account),
        "a world-open finding added by a CloudTrail-reported call is closed by that event":
            lambda: event_closes_what_it_reports(account),
        "only transient errors reach the on-failure destination":
            lambda: only_transient_errors_kept(account),
    })
    for region in REGIONS:
        for _ in range(3):
            account.create_group(region, dynamic=True)
        account.create_group(region, dynamic=False)
    web = account.create_group(EAST, dynamic=False)
    account.ec2[EAST].authorize_security_group_ingress(GroupId=web.group_id, IpPermissions=[
        {"IpProtocol": "icmp", "FromPort": 3, "ToPort": 4, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]},
        {"IpProtocol": "58", "FromPort": 2, "ToPort": -1, "Ipv6Ranges": [{"CidrIpv6": "::/0"}]}])
    account.ec2[EAST].authorize_security_group_ingress(
        GroupId=web.group_id, IpPermissions=[{"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22,
                                              "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}],
        TagSpecifications=[{"ResourceType": "security-group-rule", "Tags": [{"Key": EXEMPT_KEY, "Value": "False"}]}])
    bastion = account.create_group(EAST, exempt=True, dynamic=False)
    protected = account.create_group(EAST, protected=True, dynamic=False)
    account.ec2[EAST].authorize_security_group_ingress(GroupId=protected.group_id, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    account.faults.add(Fault(
        "ec2.RevokeSecurityGroupIngress", "UnauthorizedOperation", status=403,
        message=f"You are not authorized to perform this operation. User is not authorized to perform: "
                f"ec2:RevokeSecurityGroupIngress on resource: security-group/{protected.group_id} with an explicit "
                "deny in a service control policy",
        when=lambda params: params.get("GroupId") == protected.group_id))

    end = START + dt.timedelta(days=DAYS)
    hour = START
    while hour < end:
        account.plan_faults(hour)
        minutes = sorted(sim.rng.sample(range(1, 60), sim.rng.choice([0, 1, 1, 2, 3])))
        for minute in minutes:
            sim.clock.set(hour + dt.timedelta(minutes=minute))
            target = sim.rng.random()
            if target < 0.05:
                sim.step("a person changes the exempt group", lambda: account.authorize(bastion))
            elif target < 0.09 and sum(1 for r in account.rules().values()
                                         if r["GroupId"] == protected.group_id) < 12:
                sim.step("a person changes the protected group", lambda: account.authorize(protected))
            else:
                sim.step("a person changes ingress", account.act)
        hour += dt.timedelta(hours=1)
        sim.clock.set(hour)
        sim.step("hourly sweep", account.sweep)

    # The protected group's denied revokes were reported, the exempt group's findings kept.
    rules = account.rules().values()
    assert any(account.verdict(r) == "close" for r in rules if r["GroupId"] == protected.group_id)
    assert any(account.verdict(r) == "report" and not r["IsEgress"] for r in rules
               if r["GroupId"] == bastion.group_id)
    assert any(r.get("Tags") and not r["IsEgress"] and account.verdict(r) == "report" for r in rules)
    assert any(r["IpProtocol"] == "icmp" and (r["FromPort"], r["ToPort"]) == (3, 4) and r.get("CidrIpv4") in WORLD
               for r in rules), "Path MTU discovery was kept"
    figures = account.figures
    assert figures["failure_reports"] >= figures["sweeps"] // 2
    assert figures["revoked"] > 0 and figures["deleted_in_flight"] > 0 and figures["throttle_bursts"] > 0
    print(f"\nsg_remediation lifetime: {DAYS} simulated days, {sim.summary()}, {figures}, "
          f"wall {time.perf_counter() - wall:.1f}s")
