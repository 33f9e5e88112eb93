"""The pure policy: allowed ports, world-open rules, findings and the run plan (unit and property tests)."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sg_remediation import policy
from sg_remediation.policy import AllowedPorts, Group, Rule

DEFAULT = policy.parse_allowed_ports("80,443")
SETTINGS = settings(max_examples=80, deadline=None)


def rule(protocol: str = "tcp", from_port: int | None = 22, to_port: int | None = None, *, v4: str | None = "0.0.0.0/0",
         v6: str | None = None, prefix_list: str | None = None, group: str | None = None,
         egress: bool = False, rule_id: str = "sgr-1") -> Rule:
    item: dict[str, Any] = {"SecurityGroupRuleId": rule_id, "GroupId": "sg-1", "IsEgress": egress,
                            "IpProtocol": protocol}
    if from_port is not None:
        item["FromPort"] = from_port
        item["ToPort"] = from_port if to_port is None else to_port
    if v6 is not None:
        item["CidrIpv6"] = v6
    elif prefix_list is not None:
        item["PrefixListId"] = prefix_list
    elif group is not None:
        item["ReferencedGroupInfo"] = {"GroupId": group, "UserId": "123456789012"}
    elif v4 is not None:
        item["CidrIpv4"] = v4
    return Rule.from_api(item)


# --------------------------------------------------------------------------- allowed ports


@pytest.mark.parametrize(("text", "tcp", "icmp"), [
    ("80,443", ((80, 80), (443, 443)), False),
    ("443, 80", ((80, 80), (443, 443)), False),
    ("80,443,8000-8080", ((80, 80), (443, 443), (8000, 8080)), False),
    ("8000-8080,8081,8070-8090", ((8000, 8090),), False),
    ("80,81,82", ((80, 82),), False),
    ("0-65535", ((0, 65535),), False),
    ("443,icmp", ((443, 443),), True),
    ("none", (), False),
    ("NONE", (), False),
])
def test_parse_allowed_ports(text: str, tcp: tuple[tuple[int, int], ...], icmp: bool) -> None:
    assert policy.parse_allowed_ports(text) == AllowedPorts(tcp=tcp, icmp=icmp)


@pytest.mark.parametrize(("text", "message"), [
    ("", "empty"),
    ("80,,443", "empty item"),
    ("http", "'http' is not a port"),
    ("80-", "'80-' is not a port"),
    ("-1", "'-1' is not a port"),
    ("65536", "between 0 and 65535"),
    ("9000-8000", "start is above its end"),
    ("80;443", "is not a port"),
])
def test_parse_allowed_ports_rejects(text: str, message: str) -> None:
    with pytest.raises(policy.PolicyError, match=message):
        policy.parse_allowed_ports(text)


port_ranges = st.lists(
    st.tuples(st.integers(0, 400), st.integers(0, 60)).map(lambda t: (t[0], min(t[0] + t[1], 400))),
    max_size=6,
)


@SETTINGS
@given(port_ranges, st.booleans())
def test_allowed_ports_round_trip_and_membership(ranges: list[tuple[int, int]], icmp: bool) -> None:
    items = [policy.format_range(a, b) for a, b in ranges] + (["icmp"] if icmp else [])
    text = ",".join(items) if items else "none"
    allowed = policy.parse_allowed_ports(text)
    assert policy.parse_allowed_ports(allowed.describe()) == allowed
    assert allowed.icmp == icmp
    members = {p for a, b in ranges for p in range(a, b + 1)}
    for port in range(0, 402):
        assert allowed.allows_tcp(port, port) == (port in members)


@SETTINGS
@given(port_ranges, st.integers(0, 400), st.integers(0, 100))
def test_disallowed_is_exactly_the_ports_outside(ranges: list[tuple[int, int]], low: int, width: int) -> None:
    allowed = policy.parse_allowed_ports(",".join(policy.format_range(a, b) for a, b in ranges) or "none")
    high = low + width
    members = {p for a, b in ranges for p in range(a, b + 1)}
    gaps = allowed.disallowed(low, high)
    gap_ports = [p for a, b in gaps for p in range(a, b + 1)]
    assert len(gap_ports) == len(set(gap_ports))  # disjoint
    assert set(gap_ports) == {p for p in range(low, high + 1) if p not in members}
    assert gaps == sorted(gaps)


# --------------------------------------------------------------------------- exempt tag


def test_exempt_tag() -> None:
    tag = policy.parse_exempt_tag("AutoRemediate=false")
    assert tag.matches({"AutoRemediate": "false"})
    assert tag.matches({"AutoRemediate": "FALSE"})
    assert not tag.matches({"AutoRemediate": "true"})
    assert not tag.matches({"autoremediate": "false"})
    assert not tag.matches({})
    assert policy.parse_exempt_tag("team=").matches({"team": ""})


@pytest.mark.parametrize("text", ["AutoRemediate", "=false", "", "  = x"])
def test_exempt_tag_rejects(text: str) -> None:
    with pytest.raises(policy.PolicyError, match="Key=Value"):
        policy.parse_exempt_tag(text)


# --------------------------------------------------------------------------- findings: the cases


@pytest.mark.parametrize(("case", "expected"), [
    (rule("tcp", 22), "tcp 22 is open to 0.0.0.0/0; port 22 not in the allowed public ports (80,443)"),
    (rule("tcp", 443), None),
    (rule("tcp", 80), None),
    (rule("tcp", 3389, v6="::/0"), "tcp 3389 is open to ::/0; port 3389 not in the allowed public ports (80,443)"),
    (rule("-1", None), "all traffic (protocol -1) is open to 0.0.0.0/0"),
    (rule("-1", -1, -1, v6="::/0"), "all traffic (protocol -1) is open to ::/0"),
    (rule("tcp", 0, 65535), "tcp 0-65535 is open to 0.0.0.0/0; ports 0-79, 81-442, 444-65535 not in the allowed "
                            "public ports (80,443)"),
    (rule("tcp", 20, 25), "tcp 20-25 is open to 0.0.0.0/0; ports 20-25 not in the allowed public ports (80,443)"),
    (rule("tcp", 80, 443), "tcp 80-443 is open to 0.0.0.0/0; ports 81-442 not in the allowed public ports (80,443)"),
    (rule("tcp", 22, v4="10.0.0.0/8"), None),
    (rule("tcp", 22, v4="203.0.113.0/24"), None),
    (rule("tcp", 22, prefix_list="pl-0123456789abcdef0"), None),
    (rule("tcp", 22, group="sg-0fedcba9876543210"), None),
    (rule("-1", None, group="sg-0fedcba9876543210"), None),
    (rule("tcp", 22, egress=True), None),
    (rule("-1", None, egress=True), None),
    (rule("udp", 443), "udp 443 is open to 0.0.0.0/0; allowed public ports apply to TCP only"),
    (rule("icmp", -1, -1), "icmp is open to 0.0.0.0/0; add 'icmp' to the allowed public ports to allow it"),
    (rule("icmpv6", -1, -1, v6="::/0"), "icmpv6 is open to ::/0; add 'icmp' to the allowed public ports to allow it"),
    (rule("47", None), "IP protocol 47 is open to 0.0.0.0/0"),
    (rule("6", 22), "tcp 22 is open to 0.0.0.0/0; port 22 not in the allowed public ports (80,443)"),
    (rule("6", 443), None),
    (rule("17", 53), "udp 53 is open to 0.0.0.0/0; allowed public ports apply to TCP only"),
])
def test_evaluate_cases(case: Rule, expected: str | None) -> None:
    finding = policy.evaluate(case, DEFAULT)
    assert (finding.reason if finding else None) == expected


def test_icmp_allowed_by_keyword() -> None:
    allowed = policy.parse_allowed_ports("443,icmp")
    assert policy.evaluate(rule("icmp", 8, 0), allowed) is None
    assert policy.evaluate(rule("icmpv6", -1, -1, v6="::/0"), allowed) is None
    assert policy.evaluate(rule("udp", 443), allowed) is not None


def test_rule_summary_and_report() -> None:
    assert rule("tcp", 20, 25).summary() == "tcp 20-25 from 0.0.0.0/0"
    assert rule("-1", None).summary() == "all traffic from 0.0.0.0/0"
    assert rule("icmp", -1, -1).summary() == "icmp all types from 0.0.0.0/0"
    assert rule("tcp", 22, group="sg-9").summary() == "tcp 22 from group sg-9"
    assert rule("udp", 53, rule_id="sgr-x").as_report() == {
        "ruleId": "sgr-x", "protocol": "udp", "ports": "53", "source": "0.0.0.0/0"}


# --------------------------------------------------------------------------- findings: properties

protocols = st.sampled_from(["tcp", "6", "udp", "17", "icmp", "1", "icmpv6", "58", "-1", "all", "47", "50"])
ports = st.integers(0, 65535)
world_sources = st.sampled_from([{"v4": "0.0.0.0/0"}, {"v6": "::/0"}, {"v4": "0.0.0.0/0"}])


@st.composite
def narrow_cidrs(draw: st.DrawFn) -> dict[str, str]:
    if draw(st.booleans()):
        address = ipaddress.IPv4Address(draw(st.integers(0, 2**32 - 1)))
        network = ipaddress.ip_network(f"{address}/{draw(st.integers(1, 32))}", strict=False)
        return {"v4": str(network)}
    address6 = ipaddress.IPv6Address(draw(st.integers(0, 2**128 - 1)))
    network6 = ipaddress.ip_network(f"{address6}/{draw(st.integers(1, 128))}", strict=False)
    return {"v6": str(network6)}


@st.composite
def allowed_sets(draw: st.DrawFn) -> AllowedPorts:
    ranges = draw(st.lists(st.tuples(ports, st.integers(0, 3000)), max_size=5))
    items = [policy.format_range(a, min(a + w, 65535)) for a, w in ranges]
    if draw(st.booleans()):
        items.append("icmp")
    return policy.parse_allowed_ports(",".join(items) or "none")


@SETTINGS
@given(protocols, ports, ports, narrow_cidrs(), allowed_sets())
def test_narrower_sources_are_never_findings(protocol: str, a: int, b: int, source: dict[str, str],
                                             allowed: AllowedPorts) -> None:
    assert policy.evaluate(rule(protocol, min(a, b), max(a, b), **source), allowed) is None  # type: ignore[arg-type]


@SETTINGS
@given(protocols, ports, ports, world_sources, allowed_sets())
def test_egress_is_never_a_finding(protocol: str, a: int, b: int, source: dict[str, str],
                                   allowed: AllowedPorts) -> None:
    case = rule(protocol, min(a, b), max(a, b), egress=True, **source)  # type: ignore[arg-type]
    assert policy.evaluate(case, allowed) is None


@SETTINGS
@given(st.sampled_from(["tcp", "6"]), ports, st.integers(0, 2000), allowed_sets())
def test_world_tcp_is_a_finding_iff_some_port_is_not_allowed(protocol: str, low: int, width: int,
                                                             allowed: AllowedPorts) -> None:
    high = min(low + width, 65535)
    outside = any(not any(a <= p <= b for a, b in allowed.tcp) for p in range(low, high + 1))
    for source in ({"v4": "0.0.0.0/0"}, {"v6": "::/0"}):
        finding = policy.evaluate(rule(protocol, low, high, **source), allowed)  # type: ignore[arg-type]
        assert (finding is not None) == outside


@SETTINGS
@given(st.sampled_from(["udp", "17", "-1", "all", "47", "50"]), ports, ports, world_sources, allowed_sets())
def test_world_udp_all_and_other_protocols_are_always_findings(protocol: str, a: int, b: int,
                                                               source: dict[str, str], allowed: AllowedPorts) -> None:
    finding = policy.evaluate(rule(protocol, min(a, b), max(a, b), **source), allowed)  # type: ignore[arg-type]
    assert finding is not None and finding.reason


@SETTINGS
@given(st.sampled_from(["icmp", "1", "icmpv6", "58"]), world_sources, allowed_sets())
def test_world_icmp_is_a_finding_unless_allowed(protocol: str, source: dict[str, str], allowed: AllowedPorts) -> None:
    finding = policy.evaluate(rule(protocol, -1, -1, **source), allowed)  # type: ignore[arg-type]
    assert (finding is None) == allowed.icmp


# --------------------------------------------------------------------------- the run plan


def group(group_id: str, tags: dict[str, str] | None = None) -> Group:
    return Group(group_id=group_id, name=group_id, vpc_id="vpc-1", owner_id="123456789012", region="us-east-1",
                 tags=tags or {})


EXEMPT = policy.parse_exempt_tag("AutoRemediate=false")


def test_plan_keeps_allowed_world_rules_for_the_report() -> None:
    rules = [rule("tcp", 22, rule_id="a"), rule("tcp", 443, rule_id="b"), rule("tcp", 22, v4="10.0.0.0/8", rule_id="c")]
    plan = policy.plan_run([(group("sg-1"), rules)], DEFAULT, EXEMPT, "enforce", 50)
    (only,) = plan.groups
    assert [f.rule.rule_id for f in only.findings] == ["a"]
    assert [r.rule_id for r in only.allowed_open] == ["b"]
    assert only.action == "revoke"


def test_groups_without_findings_are_not_planned() -> None:
    plan = policy.plan_run([(group("sg-1"), [rule("tcp", 443)])], DEFAULT, EXEMPT, "enforce", 50)
    assert plan.groups == () and plan.total_findings == 0


@SETTINGS
@given(
    st.lists(st.tuples(st.integers(0, 4), st.booleans()), min_size=0, max_size=8),
    st.sampled_from(["enforce", "report"]),
    st.integers(1, 10),
)
def test_plan_never_revokes_more_than_max_changes_nor_in_report_mode_nor_exempt(
    shape: list[tuple[int, bool]], mode: str, max_changes: int
) -> None:
    groups = []
    for index, (count, exempt) in enumerate(shape):
        tags = {"AutoRemediate": "false"} if exempt else {}
        rules = [rule("tcp", 1000 + n, rule_id=f"sgr-{index}-{n}") for n in range(count)]
        groups.append((group(f"sg-{index}", tags), rules))
    plan = policy.plan_run(groups, DEFAULT, EXEMPT, mode, max_changes)
    revoking = sum(len(p.findings) for p in plan.to_revoke)
    assert revoking <= max_changes
    if mode == "report":
        assert revoking == 0
    assert all(not EXEMPT.matches(p.group.tags) for p in plan.to_revoke)
    assert plan.total_findings == sum(count for count, _ in shape)
    actionable = sum(count for count, exempt in shape if not exempt)
    assert plan.guard_tripped == (mode == "enforce" and actionable > max_changes)
    if mode == "enforce" and not plan.guard_tripped:
        assert revoking == actionable
