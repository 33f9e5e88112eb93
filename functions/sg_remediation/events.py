"""What the function was invoked with: a CloudTrail API call (via EventBridge) or a scheduled sweep.

Pure parsing, no AWS calls. A malformed or failed event becomes ``Ignored`` with the reason.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from shared.names import is_region

CLOUDTRAIL_DETAIL_TYPE = "AWS API Call via CloudTrail"
EVENT_NAMES = ("AuthorizeSecurityGroupIngress", "AuthorizeSecurityGroupEgress", "ModifySecurityGroupRules",
               "CreateSecurityGroup")
_GROUP_ID = re.compile(r"^sg-[0-9a-f]{8,17}$")


@dataclass(frozen=True)
class Sweep:
    """A scheduled run over every security group in the configured regions."""

    time: str | None


@dataclass(frozen=True)
class Change:
    """A successful CloudTrail API call that changed (or created) security groups."""

    event_name: str
    event_id: str
    region: str
    account: str | None
    group_ids: tuple[str, ...]
    actor: str
    source_ip: str | None
    event_time: str | None
    user_agent: str | None
    rule_ids: frozenset[str]  # rules this call added or modified, when CloudTrail recorded them

    def as_report(self) -> dict[str, Any]:
        return {
            "eventName": self.event_name,
            "eventId": self.event_id,
            "actor": self.actor,
            "sourceIPAddress": self.source_ip,
            "eventTime": self.event_time,
        }


@dataclass(frozen=True)
class Ignored:
    """Input that is permanently bad: not retried, logged and counted."""

    reason: str
    details: Mapping[str, Any]


Parsed = Sweep | Change | Ignored


def parse(event: Any) -> Parsed:
    if not isinstance(event, Mapping):
        return Ignored("event is not a JSON object", {"type": type(event).__name__})
    detail_type = event.get("detail-type")
    source = event.get("source")
    if detail_type == "Scheduled Event" and source == "aws.events":
        time = event.get("time")
        return Sweep(time=time if isinstance(time, str) else None)
    if detail_type == CLOUDTRAIL_DETAIL_TYPE:
        return _parse_cloudtrail(event)
    return Ignored("not a scheduled event nor a CloudTrail API call", {"source": source, "detailType": detail_type})


def _parse_cloudtrail(event: Mapping[str, Any]) -> Parsed:
    detail = event.get("detail")
    if not isinstance(detail, Mapping):
        return Ignored("CloudTrail event without a detail object", {"id": event.get("id")})
    name = detail.get("eventName")
    info: dict[str, Any] = {"eventName": name, "eventId": detail.get("eventID"), "id": event.get("id")}
    if detail.get("eventSource") != "ec2.amazonaws.com" or name not in EVENT_NAMES:
        return Ignored("CloudTrail event is not a security-group change this function handles", info)
    if detail.get("errorCode"):
        info.update(errorCode=detail.get("errorCode"), errorMessage=detail.get("errorMessage"),
                    actor=_actor(detail))
        return Ignored("the API call failed, so it changed nothing", info)
    region = detail.get("awsRegion") or event.get("region")
    if not is_region(region):
        return Ignored("CloudTrail event without a valid region", info)
    request = detail.get("requestParameters")
    response = detail.get("responseElements")
    request = request if isinstance(request, Mapping) else {}
    response = response if isinstance(response, Mapping) else {}
    rule_items = _items(response.get("securityGroupRuleSet"))
    group_ids: list[str] = []
    if name in ("AuthorizeSecurityGroupIngress", "AuthorizeSecurityGroupEgress"):
        group_ids.append(str(request.get("groupId") or ""))
        # A default-VPC call by group name has no groupId in the request; the response's rules carry it.
        group_ids += [str(item.get("groupId") or "") for item in rule_items]
    elif name == "ModifySecurityGroupRules":
        modify = request.get("ModifySecurityGroupRulesRequest")
        if isinstance(modify, Mapping):
            group_ids.append(str(modify.get("GroupId") or ""))
    elif name == "CreateSecurityGroup":
        group_ids.append(str(response.get("groupId") or ""))
    ids = tuple(dict.fromkeys(gid for gid in group_ids if _GROUP_ID.match(gid)))
    if not ids:
        return Ignored(f"{name} event names no security group id", info)
    rule_ids = frozenset(str(item["securityGroupRuleId"]) for item in rule_items if item.get("securityGroupRuleId"))
    rule_ids |= _modified_rule_ids(request)
    return Change(
        event_name=str(name),
        event_id=str(detail.get("eventID") or event.get("id") or ""),
        region=region,
        account=str(detail.get("recipientAccountId") or event.get("account") or "") or None,
        group_ids=ids,
        actor=_actor(detail),
        source_ip=_str_or_none(detail.get("sourceIPAddress")),
        event_time=_str_or_none(detail.get("eventTime") or event.get("time")),
        user_agent=_str_or_none(detail.get("userAgent")),
        rule_ids=rule_ids,
    )


def _actor(detail: Mapping[str, Any]) -> str:
    identity = detail.get("userIdentity")
    if not isinstance(identity, Mapping):
        return "unknown"
    arn = identity.get("arn")
    if isinstance(arn, str) and arn:
        return arn
    invoked_by = identity.get("invokedBy")
    if isinstance(invoked_by, str) and invoked_by:
        return invoked_by
    return str(identity.get("type") or "unknown")


def _items(value: Any) -> list[Mapping[str, Any]]:
    if isinstance(value, Mapping):
        value = value.get("items")
    if isinstance(value, list):
        return [item for item in value if isinstance(item, Mapping)]
    return []


def _modified_rule_ids(request: Mapping[str, Any]) -> frozenset[str]:
    modify = request.get("ModifySecurityGroupRulesRequest")
    if not isinstance(modify, Mapping):
        return frozenset()
    updates = modify.get("SecurityGroupRule")
    # CloudTrail records one update as an object and several as a list.
    listed = updates if isinstance(updates, list) else [updates]
    return frozenset(
        str(item["SecurityGroupRuleId"])
        for item in listed
        if isinstance(item, Mapping) and item.get("SecurityGroupRuleId")
    )


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
