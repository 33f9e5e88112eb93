"""The adapter: the only module of this function that calls AWS.

Every call goes to the function's own account, or to a target account with ``ec2_client`` (made with the
member role's credentials, ``shared.targets_aws.Sessions``). Every list call paginates. Errors that mean
"already done" or "gone" become results; a revoke that AWS refuses (access denied, throttling that outlasted
the client's adaptive retries) ends in the outcome's ``error`` with the rule ids it left, so the caller
decides per group whether to report it or raise.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, cast

from botocore.exceptions import ClientError

from sg_remediation.policy import Group, Rule
from shared.clients import client
from shared.errors import error_code
from shared.observability import logger
from shared.reports import ActionReport, ReportPublisher

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client

# The rule (or the permission) is not in the group any more: someone, or an overlapping run, removed it.
RULE_GONE_CODES = frozenset({"InvalidPermission.NotFound", "InvalidSecurityGroupRuleId.NotFound"})
GROUP_GONE_CODES = frozenset({"InvalidGroup.NotFound", "InvalidGroupId.NotFound"})


class GroupGone(Exception):
    """The security group does not exist (deleted since the event, or never in this region)."""


@dataclass
class RevokeOutcome:
    revoked: list[str] = field(default_factory=list)
    already_gone: list[str] = field(default_factory=list)
    group_gone: bool = False
    failed: list[str] = field(default_factory=list)  # rule ids left in place because of ``error``
    error: ClientError | None = None


def ec2(region: str) -> EC2Client:
    return cast("EC2Client", client("ec2", region))


def describe_group(region: str, group_id: str, *, ec2_client: EC2Client | None = None) -> Group:
    """One group by id; raises GroupGone when it does not exist."""
    try:
        response = (ec2_client or ec2(region)).describe_security_groups(GroupIds=[group_id])
    except ClientError as error:
        if error_code(error) in GROUP_GONE_CODES:
            raise GroupGone(group_id) from None
        raise
    groups = response.get("SecurityGroups", [])
    if not groups:
        raise GroupGone(group_id)
    return Group.from_api(groups[0], region)


def group_rules(region: str, group_id: str, *, ec2_client: EC2Client | None = None) -> list[Rule]:
    """Every rule (ingress and egress) of one group."""
    paginator = (ec2_client or ec2(region)).get_paginator("describe_security_group_rules")
    rules: list[Rule] = []
    for page in paginator.paginate(Filters=[{"Name": "group-id", "Values": [group_id]}]):
        rules.extend(Rule.from_api(item) for item in page.get("SecurityGroupRules", []))
    return rules


def all_groups(region: str, *, ec2_client: EC2Client | None = None) -> list[tuple[Group, list[Rule]]]:
    """Every security group of the region with its rules: two paginated listings, not one call per group."""
    ec2_client = ec2_client or ec2(region)
    groups: list[Group] = []
    for page in ec2_client.get_paginator("describe_security_groups").paginate():
        groups.extend(Group.from_api(item, region) for item in page.get("SecurityGroups", []))
    by_group: dict[str, list[Rule]] = defaultdict(list)
    for rules_page in ec2_client.get_paginator("describe_security_group_rules").paginate():
        for item in rules_page.get("SecurityGroupRules", []):
            rule = Rule.from_api(item)
            by_group[rule.group_id].append(rule)
    return [(group, by_group.get(group.group_id, [])) for group in groups]


def revoke_ingress(region: str, group_id: str, rule_ids: Sequence[str]) -> RevokeOutcome:
    return revoke(region, group_id, rule_ids, egress=False)


def revoke(region: str, group_id: str, rule_ids: Sequence[str], *, egress: bool,
           ec2_client: EC2Client | None = None) -> RevokeOutcome:
    """Revoke ``rule_ids`` (ingress, or egress, rules of ``group_id``) by security-group rule id.

    One call for all of them; when it fails because some rule no longer exists, each id is retried
    alone so the rest are still revoked and the missing ones are reported as already gone. Any other
    error stops the group: the ids not yet revoked go to ``failed`` with the error.
    """
    outcome = RevokeOutcome()
    if not rule_ids:
        return outcome
    batches = [list(rule_ids)]
    while batches:
        batch = batches.pop(0)
        try:
            _revoke(ec2_client or ec2(region), group_id, batch, egress)
            outcome.revoked.extend(batch)
            continue
        except ClientError as error:
            code = error_code(error)
            if code in GROUP_GONE_CODES:
                outcome.group_gone = True
                return outcome
            if code not in RULE_GONE_CODES:
                outcome.error = error
                outcome.failed = [*batch, *(rule_id for rest in batches for rule_id in rest)]
                return outcome
        if len(batch) == 1:
            outcome.already_gone.extend(batch)
        else:
            batches = [[rule_id] for rule_id in batch] + batches
    return outcome


def _revoke(client_: EC2Client, group_id: str, rule_ids: list[str], egress: bool) -> None:
    call = client_.revoke_security_group_egress if egress else client_.revoke_security_group_ingress
    response = call(GroupId=group_id, SecurityGroupRuleIds=rule_ids)
    unknown = response.get("UnknownIpPermissions") or []
    if unknown:
        logger.warning("revoke reported unknown permissions", extra={"groupId": group_id, "unknown": unknown})


def prefix_list_cidrs(region: str, prefix_list_ids: Sequence[str], *,
                      ec2_client: EC2Client | None = None) -> dict[str, tuple[str, ...]]:
    """The CIDRs of each customer-managed prefix list among ``prefix_list_ids`` (AWS-managed lists are skipped:
    they hold service ranges, never the world). One describe call, then the entries of each list, paginated."""
    if not prefix_list_ids:
        return {}
    client_ = ec2_client or ec2(region)
    customer: list[str] = []
    for page in client_.get_paginator("describe_managed_prefix_lists").paginate(PrefixListIds=list(prefix_list_ids)):
        customer += [item["PrefixListId"] for item in page.get("PrefixLists", []) if item.get("OwnerId") != "AWS"]
    found: dict[str, tuple[str, ...]] = {}
    for prefix_list_id in customer:
        cidrs: list[str] = []
        for entries in client_.get_paginator("get_managed_prefix_list_entries").paginate(PrefixListId=prefix_list_id):
            cidrs += [entry["Cidr"] for entry in entries.get("Entries", []) if entry.get("Cidr")]
        found[prefix_list_id] = tuple(cidrs)
    return found


def publish(report: ActionReport, topic_arn: str | None) -> str | None:
    return ReportPublisher(client("sns"), topic_arn).publish(report)
