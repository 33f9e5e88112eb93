"""Pure decisions: which security-group rules are world-open on ports that should not be public.

No boto3, no environment. Rules come in as ``DescribeSecurityGroupRules`` returns them
(``SecurityGroupRuleId``, ``GroupId``, ``IsEgress``, ``IpProtocol``, ``FromPort``, ``ToPort``, ``Tags`` and exactly
one source: ``CidrIpv4``, ``CidrIpv6``, ``PrefixListId`` or ``ReferencedGroupInfo``).

The policy:

- a rule is *world-open* when its source is a CIDR of prefix length at most ``max_prefix_v4`` /
  ``max_prefix_v6`` (default 0: only ``0.0.0.0/0`` and ``::/0``) that is not a private network, or a
  customer-managed prefix list holding such a CIDR; security-group references and narrower CIDRs never are;
- a world-open rule is allowed when an entry of the allowed public ports covers everything it opens:
  ``443`` / ``8000-8080`` / ``tcp:22`` (TCP ports), ``udp:443`` / ``udp:51820`` (UDP ports), ``icmp`` /
  ``icmp:3`` / ``icmp:3:4`` (ICMP: any type, a type with any code, a type and code), ``icmpv6`` / ``icmpv6:2``;
  a port range is allowed only when every port of it is; an ICMP rule for all types (or all codes of a type)
  only by an entry that covers all of them;
- protocol ``-1`` (all traffic) and any other IP protocol (GRE, ESP ...) world-open are always findings;
- egress rules are findings only when ``egress`` is ``report`` or ``enforce`` (default ``off``), with the same
  allowed ports; with ``report`` they are reported, never revoked.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

MAX_PORT = 65535
MAX_ICMP = 255
DEFAULT_ALLOWED_PORTS = "80,443,icmp:3:4,icmpv6:2"
EGRESS_MODES = ("off", "report", "enforce")
MAX_PREFIX_LIMITS = {"v4": 8, "v6": 32}  # wider settings would count whole ISP allocations as "the world"
_PORT_ITEM = re.compile(r"^(?:(tcp|udp):)?(\d{1,5})(?:\s*-\s*(\d{1,5}))?$", re.ASCII | re.IGNORECASE)
_ICMP_ITEM = re.compile(r"^(icmp|icmpv6)(?::(\d{1,3})(?::(\d{1,3}))?)?$", re.ASCII | re.IGNORECASE)

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
    """A bad policy setting (allowed ports, exempt tag, regions, prefix widths, egress)."""


# --------------------------------------------------------------------------- allowed public ports

IcmpEntry = tuple[int | None, int | None]  # (type, code); None = any


@dataclass(frozen=True)
class AllowedPorts:
    """What may be open to the world: TCP and UDP port ranges (merged, sorted), ICMP / ICMPv6 (type, code)."""

    tcp: tuple[tuple[int, int], ...] = ()
    udp: tuple[tuple[int, int], ...] = ()
    icmp: tuple[IcmpEntry, ...] = ()
    icmpv6: tuple[IcmpEntry, ...] = ()

    def ranges(self, protocol: str) -> tuple[tuple[int, int], ...]:
        return self.tcp if protocol == "tcp" else self.udp if protocol == "udp" else ()

    def allows_tcp(self, from_port: int, to_port: int) -> bool:
        return not self.disallowed(from_port, to_port)

    def disallowed(self, from_port: int, to_port: int, protocol: str = "tcp") -> list[tuple[int, int]]:
        """The sub-ranges of ``[from_port, to_port]`` of ``protocol`` (tcp or udp) that are not allowed."""
        gaps: list[tuple[int, int]] = []
        cursor = from_port
        for low, high in self.ranges(protocol):
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

    def allows_icmp(self, protocol: str, icmp_type: int, code: int) -> bool:
        """``icmp_type`` / ``code`` as the rule has them (``-1``: all types / all codes)."""
        entries = self.icmp if protocol == "icmp" else self.icmpv6
        return any(_icmp_covers(entry, icmp_type, code) for entry in entries)

    def describe(self) -> str:
        parts = [format_range(low, high) for low, high in self.tcp]
        parts += [f"udp:{format_range(low, high)}" for low, high in self.udp]
        parts += [_icmp_text("icmp", entry) for entry in self.icmp]
        parts += [_icmp_text("icmpv6", entry) for entry in self.icmpv6]
        return ",".join(parts) if parts else "none"


def _icmp_covers(entry: IcmpEntry, icmp_type: int, code: int) -> bool:
    allowed_type, allowed_code = entry
    if allowed_type is not None and allowed_type != icmp_type:
        return False  # also when the rule opens all types (-1): one type does not cover them
    return allowed_code is None or allowed_code == code


def _icmp_text(protocol: str, entry: IcmpEntry) -> str:
    icmp_type, code = entry
    if icmp_type is None:
        return protocol
    return f"{protocol}:{icmp_type}" if code is None else f"{protocol}:{icmp_type}:{code}"


def parse_allowed_ports(text: str) -> AllowedPorts:
    """``"80,443,udp:51820,icmp:3:4,icmpv6:2"``; ``"none"`` allows nothing. Raises PolicyError naming the item."""
    value = text.strip()
    if not value:
        raise PolicyError("allowed public ports are empty; use 'none' to allow no world-open port")
    if value.lower() == "none":
        return AllowedPorts()
    ranges: dict[str, list[tuple[int, int]]] = {"tcp": [], "udp": []}
    icmp: dict[str, list[IcmpEntry]] = {"icmp": [], "icmpv6": []}
    for raw in value.split(","):
        item = raw.strip()
        if not item:
            raise PolicyError(f"empty item in allowed public ports {text!r}")
        icmp_match = _ICMP_ITEM.match(item)
        if icmp_match:
            icmp[icmp_match.group(1).lower()].append(_icmp_entry(item, icmp_match))
            continue
        protocol, low, high = _port_entry(item)
        ranges[protocol].append((low, high))
    return AllowedPorts(tcp=tuple(_merge(ranges["tcp"])), udp=tuple(_merge(ranges["udp"])),
                        icmp=tuple(sorted(set(icmp["icmp"]), key=_icmp_key)),
                        icmpv6=tuple(sorted(set(icmp["icmpv6"]), key=_icmp_key)))


def _port_entry(item: str) -> tuple[str, int, int]:
    match = _PORT_ITEM.match(item)
    if not match:
        raise PolicyError(f"{item!r} is not a port (0-65535), a range like 8000-8080, udp:PORT, icmp:TYPE[:CODE] "
                          "or icmpv6:TYPE[:CODE]")
    protocol = (match.group(1) or "tcp").lower()
    low = int(match.group(2))
    high = int(match.group(3)) if match.group(3) else low
    if not (0 <= low <= MAX_PORT and 0 <= high <= MAX_PORT):
        raise PolicyError(f"{item!r}: ports must be between 0 and {MAX_PORT}")
    if low > high:
        raise PolicyError(f"{item!r}: range start is above its end")
    return protocol, low, high


def _icmp_entry(item: str, match: re.Match[str]) -> IcmpEntry:
    icmp_type = int(match.group(2)) if match.group(2) is not None else None
    code = int(match.group(3)) if match.group(3) is not None else None
    for number in (icmp_type, code):
        if number is not None and number > MAX_ICMP:
            raise PolicyError(f"{item!r}: ICMP types and codes are between 0 and {MAX_ICMP}")
    return icmp_type, code


def _icmp_key(entry: IcmpEntry) -> tuple[int, int]:
    return (-1 if entry[0] is None else entry[0], -1 if entry[1] is None else entry[1])


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


def parse_max_prefix(value: int, family: str) -> int:
    """``max_prefix_v4`` (0-8) / ``max_prefix_v6`` (0-32): the widest prefix length that still counts as world."""
    limit = MAX_PREFIX_LIMITS[family]
    if not 0 <= value <= limit:
        raise PolicyError(f"max_prefix_{family} must be between 0 and {limit}, not {value}")
    return value


def parse_egress(value: str) -> str:
    """``off`` (egress is never looked at), ``report`` (reported, never revoked) or ``enforce``."""
    mode = value.strip().lower()
    if mode not in EGRESS_MODES:
        raise PolicyError(f"egress {value!r} is not one of {', '.join(EGRESS_MODES)}")
    return mode


@dataclass(frozen=True)
class World:
    """Which sources count as the whole internet."""

    max_prefix_v4: int = 0
    max_prefix_v6: int = 0

    def contains(self, cidr: str | None) -> bool:
        if not cidr:
            return False
        try:
            network = ipaddress.ip_network(cidr.strip(), strict=False)
        except ValueError:
            return False
        limit = self.max_prefix_v4 if network.version == 4 else self.max_prefix_v6
        return network.prefixlen <= limit and not network.is_private


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
    if key.lower().startswith("aws:"):
        raise PolicyError(f"exempt tag {text!r}: tag keys starting with 'aws:' are reserved")
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
    tags: Mapping[str, str] = field(default_factory=dict)

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
            tags=_tags(item.get("Tags")),
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
    def direction(self) -> str:
        return "egress" if self.is_egress else "ingress"

    def icmp_type_code(self) -> tuple[int, int]:
        """ICMP type and code as the rule has them (``FromPort`` / ``ToPort``); -1 = all."""
        icmp_type = self.from_port if self.from_port is not None else -1
        code = self.to_port if self.to_port is not None and icmp_type != -1 else -1
        return icmp_type, code

    def port_range(self) -> tuple[int, int]:
        """TCP/UDP ports as a closed range; a missing or -1 bound means the whole range."""
        low = self.from_port if self.from_port is not None and self.from_port >= 0 else 0
        high = self.to_port if self.to_port is not None and self.to_port >= 0 else MAX_PORT
        return (min(low, high), max(low, high))

    def describe_ports(self) -> str:
        if self.protocol in ("tcp", "udp"):
            return format_range(*self.port_range())
        if self.protocol in ("icmp", "icmpv6"):
            icmp_type, code = self.icmp_type_code()
            if icmp_type == -1:
                return "all types"
            return f"type {icmp_type}" + ("" if code == -1 else f" code {code}")
        return "all ports"

    def summary(self) -> str:
        """``tcp 22 from 0.0.0.0/0`` (ingress) or ``egress tcp 22 to 0.0.0.0/0`` — protocol, ports, source."""
        protocol = "all traffic" if self.protocol == "all" else self.protocol
        ports = "" if self.protocol == "all" else f" {self.describe_ports()}"
        if self.is_egress:
            return f"egress {protocol}{ports} to {self.source}"
        return f"{protocol}{ports} from {self.source}"

    def as_report(self) -> dict[str, Any]:
        return {
            "ruleId": self.rule_id,
            "direction": self.direction,
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


def _tags(value: Any) -> dict[str, str]:
    if not isinstance(value, list):
        return {}
    return {str(t["Key"]): str(t.get("Value", "")) for t in value if isinstance(t, Mapping) and t.get("Key")}


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
        tags = _tags(item.get("Tags"))
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
class Policy:
    """Everything a decision needs besides the rules: allowed ports, what counts as world, exemptions, egress."""

    allowed: AllowedPorts
    exempt: ExemptTag
    world: World = World()
    egress: str = "off"


PrefixLists = Mapping[str, tuple[str, ...]]  # customer-managed prefix list id -> its CIDRs (resolved per run)


@dataclass(frozen=True)
class Finding:
    rule: Rule
    reason: str


def world_source(rule: Rule, world: World, prefix_lists: PrefixLists) -> str | None:
    """How ``rule`` reaches the world (``0.0.0.0/0``, ``pl-... (holds 0.0.0.0/0)``), or None."""
    for cidr in (rule.cidr_ipv4, rule.cidr_ipv6):
        if world.contains(cidr):
            return cidr
    if rule.prefix_list_id:
        wide = [cidr for cidr in prefix_lists.get(rule.prefix_list_id, ()) if world.contains(cidr)]
        if wide:
            return f"prefix list {rule.prefix_list_id} (holds {', '.join(wide)})"
    return None


def evaluate(rule: Rule, rules_policy: Policy, prefix_lists: PrefixLists | None = None) -> Finding | None:
    """A finding when ``rule`` opens to the world something no allowed entry covers; None otherwise."""
    if rule.is_egress and rules_policy.egress == "off":
        return None
    source = world_source(rule, rules_policy.world, prefix_lists or {})
    if source is None:
        return None
    reach = "reaches" if rule.is_egress else "is open to"
    allowed = rules_policy.allowed
    if rule.protocol == "all":
        return Finding(rule, f"all traffic (protocol -1) {reach} {source}")
    if rule.protocol in ("tcp", "udp"):
        return _port_finding(rule, allowed, f"{reach} {source}")
    if rule.protocol in ("icmp", "icmpv6"):
        if allowed.allows_icmp(rule.protocol, *rule.icmp_type_code()):
            return None
        return Finding(rule, f"{rule.protocol} {rule.describe_ports()} {reach} {source}; not in the allowed public "
                             f"ports ({allowed.describe()})")
    return Finding(rule, f"IP protocol {rule.protocol} {reach} {source}")


def _port_finding(rule: Rule, allowed: AllowedPorts, where: str) -> Finding | None:
    low, high = rule.port_range()
    gaps = allowed.disallowed(low, high, rule.protocol)
    if not gaps:
        return None
    outside = ", ".join(format_range(a, b) for a, b in gaps)
    what = f"port {outside}" if len(gaps) == 1 and gaps[0][0] == gaps[0][1] else f"ports {outside}"
    return Finding(rule, f"{rule.protocol} {format_range(low, high)} {where}; {what} not in the allowed public "
                         f"ports ({allowed.describe()})")


def findings_for(rules: Iterable[Rule], rules_policy: Policy, prefix_lists: PrefixLists | None = None
                 ) -> list[Finding]:
    found = []
    for rule in rules:
        finding = evaluate(rule, rules_policy, prefix_lists)
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
    """Findings of one group (one direction) that share an action and its reason."""

    group: Group
    findings: tuple[Finding, ...]
    action: str  # revoke | report
    why: str  # why report-only, or "" when revoking
    allowed_open: tuple[Rule, ...] = ()  # world-open ingress the policy allows (kept; named in reports)
    egress: bool = False


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


def exemption(group: Group, finding: Finding, rules_policy: Policy) -> str:
    """Why this finding is reported and never revoked, whatever the mode ("" when it may be revoked)."""
    exempt = rules_policy.exempt
    if exempt.matches(group.tags):
        return f"the group is tagged {exempt.describe()}"
    if exempt.matches(finding.rule.tags):
        return f"the rule is tagged {exempt.describe()}"
    if finding.rule.is_egress and rules_policy.egress != "enforce":
        return "egress: report"
    return ""


@dataclass(frozen=True)
class _Judged:
    group: Group
    findings: list[tuple[Finding, str]]  # with the exemption of each
    allowed_open: tuple[Rule, ...]


def plan_run(
    groups: Sequence[tuple[Group, Sequence[Rule]]],
    rules_policy: Policy,
    mode: str,
    max_changes: int,
    prefix_lists: PrefixLists | None = None,
) -> RunPlan:
    """Decide, for every finding, whether to revoke it or only report it.

    Report only when: the group or the rule carries the exempt tag; it is egress and ``egress`` is ``report``;
    ``mode`` is ``report``; or the findings to revoke in this run exceed ``max_changes`` (the guard: a run never
    revokes more than that).
    """
    lists = prefix_lists or {}
    judged: list[_Judged] = []
    for group, rules in groups:
        found = findings_for(rules, rules_policy, lists)
        if not found:
            continue
        flagged = {finding.rule.rule_id for finding in found}
        kept = tuple(rule for rule in rules if not rule.is_egress and rule.rule_id not in flagged
                     and world_source(rule, rules_policy.world, lists))
        judged.append(_Judged(group, [(f, exemption(group, f, rules_policy)) for f in found], kept))
    actionable = sum(1 for item in judged for _, why in item.findings if not why)
    guard = mode == "enforce" and actionable > max_changes
    plans: list[GroupPlan] = []
    for item in judged:
        buckets: dict[tuple[str, str, bool], list[Finding]] = {}
        for finding, why in item.findings:
            action, reason = _action(why, mode, guard, f"{actionable} rules to revoke in this run exceed "
                                                       f"MAX_CHANGES={max_changes}")
            buckets.setdefault((action, reason, finding.rule.is_egress), []).append(finding)
        for index, ((action, reason, egress), found) in enumerate(buckets.items()):
            plans.append(GroupPlan(item.group, tuple(found), action, reason,
                                   item.allowed_open if index == 0 else (), egress))
    return RunPlan(tuple(plans), guard, sum(len(item.findings) for item in judged))


def _action(exempt_because: str, mode: str, guard: bool, guard_reason: str) -> tuple[str, str]:
    if exempt_because:
        return ACTION_REPORT, exempt_because
    if mode != "enforce":
        return ACTION_REPORT, "report mode"
    if guard:
        return ACTION_REPORT, guard_reason
    return ACTION_REVOKE, ""
