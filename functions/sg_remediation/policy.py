"""Pure decisions: which security-group rules are world-open on ports that should not be public.

No boto3, no environment. Rules come in as ``DescribeSecurityGroupRules`` returns them
(``SecurityGroupRuleId``, ``GroupId``, ``IsEgress``, ``IpProtocol``, ``FromPort``, ``ToPort`` and exactly one
source: ``CidrIpv4``, ``CidrIpv6``, ``PrefixListId`` or ``ReferencedGroupInfo``).

The policy:

- a rule is *world-open* when its source is ``0.0.0.0/0`` or ``::/0`` (any CIDR of prefix length 0);
  prefix lists, security-group references and every narrower CIDR are never findings;
- egress rules are never findings;
- world-open TCP is allowed when every port of ``[FromPort, ToPort]`` is in the allowed public ports
  (``ALLOWED_PUBLIC_PORTS``, default ``80,443``); a range that covers any other port is a finding;
- the allowed ports are TCP ports: world-open UDP is always a finding (even on 443, e.g. QUIC);
- protocol ``-1`` (all traffic) world-open is always a finding;
- ICMP / ICMPv6 world-open is a finding unless the allowed list holds the word ``icmp``
  (ports do not apply to ICMP, so no port list can allow it);
- any other IP protocol (GRE, ESP, ...) world-open is a finding.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

MAX_PORT = 65535
_PORT_ITEM = re.compile(r"^(\d{1,5})(?:\s*-\s*(\d{1,5}))?$", re.ASCII)

_PROTOCOL_NAMES = {
    "-1": "all",
    "all": "all",
    "tcp": "tcp",
    "6": "tcp",
    "udp": "udp",
    "17": "udp",
    "icmp": "icmp",
    "1": "icmp",
    "icmpv6": "icmpv6",
    "58": "icmpv6",
}


class PolicyError(ValueError):
    """A bad policy setting (allowed ports, exempt tag)."""


# --------------------------------------------------------------------------- allowed public ports


@dataclass(frozen=True)
class AllowedPorts:
    """TCP port ranges allowed to be open to the world (merged, sorted), and whether ICMP is allowed."""

    tcp: tuple[tuple[int, int], ...] = ()
    icmp: bool = False

    def allows_tcp(self, from_port: int, to_port: int) -> bool:
        return not self.disallowed(from_port, to_port)

    def disallowed(self, from_port: int, to_port: int) -> list[tuple[int, int]]:
        """The sub-ranges of ``[from_port, to_port]`` that are not allowed."""
        gaps: list[tuple[int, int]] = []
        cursor = from_port
        for low, high in self.tcp:
            if high < cursor:
                continue
            if low > to_port:
                break
            if low > cursor:
                gaps.append((cursor, low - 1))
            cursor = max(cursor, high + 1)
            if cursor > to_port:
                break
        if cursor <= to_port:
            gaps.append((cursor, to_port))
        return gaps

    def describe(self) -> str:
        parts = [format_range(low, high) for low, high in self.tcp]
        if self.icmp:
            parts.append("icmp")
        return ",".join(parts) if parts else "none"


def parse_allowed_ports(text: str) -> AllowedPorts:
    """``"80,443,8000-8080"`` (TCP ports and ranges), optionally ``icmp``; ``"none"`` allows nothing.

    Raises PolicyError with a message naming the bad item.
    """
    value = text.strip()
    if not value:
        raise PolicyError("allowed public ports are empty; use 'none' to allow no world-open port")
    if value.lower() == "none":
        return AllowedPorts()
    ranges: list[tuple[int, int]] = []
    icmp = False
    for raw in value.split(","):
        item = raw.strip()
        if not item:
            raise PolicyError(f"empty item in allowed public ports {text!r}")
        if item.lower() == "icmp":
            icmp = True
            continue
        match = _PORT_ITEM.match(item)
        if not match:
            raise PolicyError(f"{item!r} is not a port (0-65535), a range like 8000-8080, or 'icmp'")
        low = int(match.group(1))
        high = int(match.group(2)) if match.group(2) else low
        if not (0 <= low <= MAX_PORT and 0 <= high <= MAX_PORT):
            raise PolicyError(f"{item!r}: ports must be between 0 and {MAX_PORT}")
        if low > high:
            raise PolicyError(f"{item!r}: range start is above its end")
        ranges.append((low, high))
    return AllowedPorts(tcp=tuple(_merge(ranges)), icmp=icmp)


def _merge(ranges: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for low, high in sorted(ranges):
        if merged and low <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], high))
        else:
            merged.append((low, high))
    return merged


def format_range(low: int, high: int) -> str:
    return str(low) if low == high else f"{low}-{high}"


# --------------------------------------------------------------------------- exempt tag


@dataclass(frozen=True)
class ExemptTag:
    """``Key=Value``: a group carrying this tag is reported, never changed. Values compare case-insensitively."""

    key: str
    value: str

    def matches(self, tags: Mapping[str, str]) -> bool:
        return self.key in tags and tags[self.key].strip().lower() == self.value.strip().lower()

    def describe(self) -> str:
        return f"{self.key}={self.value}"


def parse_exempt_tag(text: str) -> ExemptTag:
    key, sep, value = text.strip().partition("=")
    key = key.strip()
    if not sep or not key:
        raise PolicyError(f"exempt tag {text!r} must look like Key=Value (e.g. AutoRemediate=false)")
    if len(key) > 128 or len(value) > 256:
        raise PolicyError(f"exempt tag {text!r}: key is at most 128 characters, value at most 256")
    return ExemptTag(key=key, value=value.strip())


# --------------------------------------------------------------------------- rules and groups


@dataclass(frozen=True)
class Rule:
    """One security-group rule as DescribeSecurityGroupRules returns it."""

    rule_id: str
    group_id: str
    is_egress: bool
    protocol: str  # normalized: tcp, udp, icmp, icmpv6, all, or the IP protocol number
    from_port: int | None
    to_port: int | None
    cidr_ipv4: str | None = None
    cidr_ipv6: str | None = None
    prefix_list_id: str | None = None
    referenced_group_id: str | None = None
    description: str | None = None

    @classmethod
    def from_api(cls, item: Mapping[str, Any]) -> Rule:
        referenced = item.get("ReferencedGroupInfo") or {}
        return cls(
            rule_id=str(item.get("SecurityGroupRuleId", "")),
            group_id=str(item.get("GroupId", "")),
            is_egress=bool(item.get("IsEgress", False)),
            protocol=normalize_protocol(item.get("IpProtocol")),
            from_port=_port(item.get("FromPort")),
            to_port=_port(item.get("ToPort")),
            cidr_ipv4=item.get("CidrIpv4") or None,
            cidr_ipv6=item.get("CidrIpv6") or None,
            prefix_list_id=item.get("PrefixListId") or None,
            referenced_group_id=referenced.get("GroupId") if isinstance(referenced, Mapping) else None,
            description=item.get("Description") or None,
        )

    @property
    def source(self) -> str:
        return (
            self.cidr_ipv4
            or self.cidr_ipv6
            or self.prefix_list_id
            or (f"group {self.referenced_group_id}" if self.referenced_group_id else "")
            or "(unknown source)"
        )

    @property
    def world_open(self) -> bool:
        return _is_world(self.cidr_ipv4) or _is_world(self.cidr_ipv6)

    def port_range(self) -> tuple[int, int]:
        """TCP/UDP ports as a closed range; a missing or -1 bound means the whole range."""
        low = self.from_port if self.from_port is not None and self.from_port >= 0 else 0
        high = self.to_port if self.to_port is not None and self.to_port >= 0 else MAX_PORT
        return (min(low, high), max(low, high))

    def describe_ports(self) -> str:
        if self.protocol in ("tcp", "udp"):
            return format_range(*self.port_range())
        if self.protocol in ("icmp", "icmpv6"):
            icmp_type = "all types" if self.from_port in (None, -1) else f"type {self.from_port}"
            return icmp_type
        return "all ports"

    def summary(self) -> str:
        """``tcp 22 from 0.0.0.0/0`` — protocol, ports, source."""
        protocol = "all traffic" if self.protocol == "all" else self.protocol
        ports = "" if self.protocol == "all" else f" {self.describe_ports()}"
        return f"{protocol}{ports} from {self.source}"

    def as_report(self) -> dict[str, Any]:
        return {
            "ruleId": self.rule_id,
            "protocol": self.protocol,
            "ports": self.describe_ports(),
            "source": self.source,
        }


def normalize_protocol(value: Any) -> str:
    text = str(value if value is not None else "-1").strip().lower()
    return _PROTOCOL_NAMES.get(text, text)


def _port(value: Any) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _is_world(cidr: str | None) -> bool:
    if not cidr:
        return False
    try:
        return ipaddress.ip_network(cidr.strip(), strict=False).prefixlen == 0
    except ValueError:
        return False


@dataclass(frozen=True)
class Group:
    """A security group: what a report names, and its tags."""

    group_id: str
    name: str
    vpc_id: str | None
    owner_id: str | None
    region: str
    tags: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_api(cls, item: Mapping[str, Any], region: str) -> Group:
        tags = {str(t.get("Key")): str(t.get("Value", "")) for t in item.get("Tags") or [] if t.get("Key")}
        return cls(
            group_id=str(item["GroupId"]),
            name=str(item.get("GroupName", "")),
            vpc_id=item.get("VpcId") or None,
            owner_id=item.get("OwnerId") or None,
            region=region,
            tags=tags,
        )

    def arn(self, partition: str = "aws") -> str:
        return f"arn:{partition}:ec2:{self.region}:{self.owner_id or ''}:security-group/{self.group_id}"

    def label(self) -> str:
        return f"{self.group_id} ({self.name})" if self.name else self.group_id


# --------------------------------------------------------------------------- findings


@dataclass(frozen=True)
class Finding:
    rule: Rule
    reason: str


def evaluate(rule: Rule, allowed: AllowedPorts) -> Finding | None:
    """A finding when ``rule`` opens ingress to the world on something not allowed; None otherwise."""
    if rule.is_egress or not rule.world_open:
        return None
    source = rule.source
    if rule.protocol == "all":
        return Finding(rule, f"all traffic (protocol -1) is open to {source}")
    if rule.protocol == "tcp":
        low, high = rule.port_range()
        gaps = allowed.disallowed(low, high)
        if not gaps:
            return None
        outside = ", ".join(format_range(a, b) for a, b in gaps)
        what = f"port {outside}" if len(gaps) == 1 and gaps[0][0] == gaps[0][1] else f"ports {outside}"
        return Finding(rule, f"tcp {format_range(low, high)} is open to {source}; {what} not in the "
                             f"allowed public ports ({allowed.describe()})")
    if rule.protocol == "udp":
        low, high = rule.port_range()
        return Finding(rule, f"udp {format_range(low, high)} is open to {source}; allowed public ports "
                             f"apply to TCP only")
    if rule.protocol in ("icmp", "icmpv6"):
        if allowed.icmp:
            return None
        return Finding(rule, f"{rule.protocol} is open to {source}; add 'icmp' to the allowed public ports "
                             f"to allow it")
    return Finding(rule, f"IP protocol {rule.protocol} is open to {source}")


def findings_for(rules: Iterable[Rule], allowed: AllowedPorts) -> list[Finding]:
    found = []
    for rule in rules:
        finding = evaluate(rule, allowed)
        if finding is not None:
            found.append(finding)
    return found


# --------------------------------------------------------------------------- what a run could not do


@dataclass(frozen=True)
class Failure:
    """A group (or a whole region, when ``group_id`` is empty) that a run could not read or change."""

    region: str
    error_code: str
    message: str
    transient: bool  # throttling / 5xx: the run raises so Lambda retries it
    group_id: str = ""
    group: Group | None = None
    findings: tuple[Finding, ...] = ()  # the rules left in place

    def as_dict(self) -> dict[str, Any]:
        return {
            "groupId": self.group_id,
            "region": self.region,
            "ruleIds": [finding.rule.rule_id for finding in self.findings],
            "errorCode": self.error_code,
            "errorMessage": self.message,
            "transient": self.transient,
        }


# --------------------------------------------------------------------------- what a run does


ACTION_REVOKE = "revoke"
ACTION_REPORT = "report"


@dataclass(frozen=True)
class GroupPlan:
    group: Group
    findings: tuple[Finding, ...]
    action: str  # revoke | report
    why: str  # why report-only, or "" when revoking
    allowed_open: tuple[Rule, ...] = ()  # world-open ingress the policy allows (kept; named in reports)


@dataclass(frozen=True)
class RunPlan:
    groups: tuple[GroupPlan, ...]
    guard_tripped: bool
    total_findings: int

    @property
    def to_revoke(self) -> list[GroupPlan]:
        return [plan for plan in self.groups if plan.action == ACTION_REVOKE]

    @property
    def report_only(self) -> list[GroupPlan]:
        return [plan for plan in self.groups if plan.action == ACTION_REPORT]


def plan_run(
    groups: Sequence[tuple[Group, Sequence[Rule]]],
    allowed: AllowedPorts,
    exempt: ExemptTag,
    mode: str,
    max_changes: int,
) -> RunPlan:
    """Decide, for every group with findings, whether to revoke them or only report them.

    Report only when: ``mode`` is ``report``; the group carries the exempt tag; or the findings of all
    non-exempt groups together exceed ``max_changes`` (the guard: a run never revokes more than that).
    """
    kept: dict[str, tuple[Rule, ...]] = {}
    with_findings: list[tuple[Group, list[Finding]]] = []
    for group, rules in groups:
        found = findings_for(rules, allowed)
        if found:
            with_findings.append((group, found))
            flagged = {finding.rule.rule_id for finding in found}
            kept[group.group_id] = tuple(
                rule for rule in rules if rule.world_open and not rule.is_egress and rule.rule_id not in flagged
            )
    actionable = sum(len(found) for group, found in with_findings if not exempt.matches(group.tags))
    guard = mode == "enforce" and actionable > max_changes
    plans = []
    for group, found in with_findings:
        if exempt.matches(group.tags):
            action, why = ACTION_REPORT, f"the group is tagged {exempt.describe()}"
        elif mode != "enforce":
            action, why = ACTION_REPORT, "report mode"
        elif guard:
            action, why = ACTION_REPORT, (
                f"{actionable} rules to revoke in this run exceed MAX_CHANGES={max_changes}"
            )
        else:
            action, why = ACTION_REVOKE, ""
        plans.append(GroupPlan(group, tuple(found), action, why, kept.get(group.group_id, ())))
    return RunPlan(tuple(plans), guard, sum(len(found) for _, found in with_findings))
