"""The pure policy: allowed ports, world-open rules, findings and the run plan (unit and property tests)."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sg_remediation import policy
from sg_remediation.policy import AllowedPorts, Group, Policy, Rule, World

EXEMPT = policy.parse_exempt_tag("AutoRemediate=false")
TCP_ONLY = Policy(policy.parse_allowed_ports("80,443"), EXEMPT)
SHIPPED = Policy(policy.parse_allowed_ports(policy.DEFAULT_ALLOWED_PORTS), EXEMPT)
SETTINGS = settings(max_examples=80, deadline=None)


def with_allowed(allowed: AllowedPorts, **kwargs: Any) -> Policy:
    return Policy(allowed, EXEMPT, **kwargs)


def rule(protocol: str = "tcp", from_port: int | None = 22, to_port: int | None = None, *, v4: str | None = "0.0.0.0/0",
         v6: str | None = None, prefix_list: str | None = None, group: str | None = None,
         egress: bool = False, rule_id: str = "sgr-1", tags: dict[str, str] | None = None) -> Rule:
    item: dict[str, Any] = {"SecurityGroupRuleId": rule_id, "GroupId": "sg-1", "IsEgress": egress,
                            "IpProtocol": protocol, "Tags": [{"Key": k, "Value": v} for k, v in (tags or {}).items()]}
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


@pytest.mark.parametrize(("text", "expected"), [
    ("80,443", AllowedPorts(tcp=((80, 80), (443, 443)))),
    ("443, 80", AllowedPorts(tcp=((80, 80), (443, 443)))),
    ("80,443,8000-8080", AllowedPorts(tcp=((80, 80), (443, 443), (8000, 8080)))),
    ("8000-8080,8081,8070-8090", AllowedPorts(tcp=((8000, 8090),))),
    ("80,81,tcp:82", AllowedPorts(tcp=((80, 82),))),
    ("0-65535", AllowedPorts(tcp=((0, 65535),))),
    ("443,udp:443,UDP:51820", AllowedPorts(tcp=((443, 443),), udp=((443, 443), (51820, 51820)))),
    ("udp:1000-2000,udp:1500-2500", AllowedPorts(udp=((1000, 2500),))),
    ("icmp", AllowedPorts(icmp=((None, None),))),
    ("icmp:3:4,icmp:0,icmpv6:2", AllowedPorts(icmp=((0, None), (3, 4)), icmpv6=((2, None),))),
    ("80,443,icmp:3:4,icmpv6:2", AllowedPorts(tcp=((80, 80), (443, 443)), icmp=((3, 4),), icmpv6=((2, None),))),
    ("none", AllowedPorts()),
    ("NONE", AllowedPorts()),
])
def test_parse_allowed_ports(text: str, expected: AllowedPorts) -> None:
    assert policy.parse_allowed_ports(text) == expected


@pytest.mark.parametrize(("text", "message"), [
    ("", "empty"),
    ("80,,443", "empty item"),
    ("http", "'http' is not a port"),
    ("80-", "'80-' is not a port"),
    ("-1", "'-1' is not a port"),
    ("65536", "between 0 and 65535"),
    ("9000-8000", "start is above its end"),
    ("80;443", "is not a port"),
    ("udp:", "is not a port"),
    ("sctp:80", "is not a port"),
    ("icmp:256", "between 0 and 255"),
    ("icmp:3:999", "between 0 and 255"),
    ("icmp:3:4:5", "is not a port"),
    ("udp:70000", "between 0 and 65535"),
])
def test_parse_allowed_ports_rejects(text: str, message: str) -> None:
    with pytest.raises(policy.PolicyError, match=message):
        policy.parse_allowed_ports(text)


port_ranges = st.lists(
    st.tuples(st.integers(0, 400), st.integers(0, 60)).map(lambda t: (t[0], min(t[0] + t[1], 400))),
    max_size=6,
)


@SETTINGS
@given(port_ranges, port_ranges, st.lists(st.tuples(st.integers(0, 255), st.none() | st.integers(0, 255)), max_size=3))
def test_allowed_ports_round_trip_and_membership(tcp: list[tuple[int, int]], udp: list[tuple[int, int]],
                                                 icmp: list[tuple[int, int | None]]) -> None:
    items = [policy.format_range(a, b) for a, b in tcp] + [f"udp:{policy.format_range(a, b)}" for a, b in udp]
    items += [f"icmp:{t}" if c is None else f"icmp:{t}:{c}" for t, c in icmp]
    allowed = policy.parse_allowed_ports(",".join(items) or "none")
    assert policy.parse_allowed_ports(allowed.describe()) == allowed
    for protocol, ranges in (("tcp", tcp), ("udp", udp)):
        members = {p for a, b in ranges for p in range(a, b + 1)}
        for port in range(0, 402):
            assert (not allowed.disallowed(port, port, protocol)) == (port in members)


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


# --------------------------------------------------------------------------- findings: the issue's cases


ALLOWED = "80,443"


@pytest.mark.parametrize(("case", "expected"), [
    (rule("tcp", 22), f"tcp 22 is open to 0.0.0.0/0; port 22 not in the allowed public ports ({ALLOWED})"),
    (rule("tcp", 443), None),
    (rule("tcp", 80), None),
    (rule("tcp", 3389, v6="::/0"), f"tcp 3389 is open to ::/0; port 3389 not in the allowed public ports ({ALLOWED})"),
    (rule("-1", None), "all traffic (protocol -1) is open to 0.0.0.0/0"),
    (rule("-1", -1, -1, v6="::/0"), "all traffic (protocol -1) is open to ::/0"),
    (rule("tcp", 0, 65535), "tcp 0-65535 is open to 0.0.0.0/0; ports 0-79, 81-442, 444-65535 not in the allowed "
                            f"public ports ({ALLOWED})"),
    (rule("tcp", 20, 25), f"tcp 20-25 is open to 0.0.0.0/0; ports 20-25 not in the allowed public ports ({ALLOWED})"),
    (rule("tcp", 80, 443), "tcp 80-443 is open to 0.0.0.0/0; ports 81-442 not in the allowed public ports "
                           f"({ALLOWED})"),
    (rule("tcp", 22, v4="10.0.0.0/8"), None),
    (rule("tcp", 22, v4="203.0.113.0/24"), None),
    (rule("tcp", 22, prefix_list="pl-0123456789abcdef0"), None),
    (rule("tcp", 22, group="sg-0fedcba9876543210"), None),
    (rule("-1", None, group="sg-0fedcba9876543210"), None),
    (rule("tcp", 22, egress=True), None),
    (rule("-1", None, egress=True), None),
    (rule("udp", 443), f"udp 443 is open to 0.0.0.0/0; port 443 not in the allowed public ports ({ALLOWED})"),
    (rule("icmp", -1, -1), f"icmp all types is open to 0.0.0.0/0; not in the allowed public ports ({ALLOWED})"),
    (rule("icmpv6", -1, -1, v6="::/0"), f"icmpv6 all types is open to ::/0; not in the allowed public ports "
                                        f"({ALLOWED})"),
    (rule("47", None), "IP protocol 47 is open to 0.0.0.0/0"),
    (rule("6", 22), f"tcp 22 is open to 0.0.0.0/0; port 22 not in the allowed public ports ({ALLOWED})"),
    (rule("6", 443), None),
    (rule("17", 53), f"udp 53 is open to 0.0.0.0/0; port 53 not in the allowed public ports ({ALLOWED})"),
])
def test_evaluate_cases(case: Rule, expected: str | None) -> None:
    finding = policy.evaluate(case, TCP_ONLY)
    assert (finding.reason if finding else None) == expected


@pytest.mark.parametrize(("case", "allowed"), [
    (rule("icmp", 3, 4), True),  # fragmentation needed: Path MTU discovery
    (rule("icmp", 3, 3), False),
    (rule("icmp", 3, -1), False),  # all codes of type 3: more than icmp:3:4
    (rule("icmp", -1, -1), False),
    (rule("icmp", 8, 0), False),  # echo request
    (rule("58", 2, -1, v6="::/0"), True),  # packet too big, any code
    (rule("icmpv6", 2, 0, v6="::/0"), True),
    (rule("icmpv6", 128, 0, v6="::/0"), False),
    (rule("icmpv6", -1, -1, v6="::/0"), False),
    (rule("icmp", 2, -1), False),  # icmpv6:2 does not allow ICMP (v4) type 2
    (rule("udp", 443), False),
    (rule("tcp", 443, v6="::/0"), True),
])
def test_the_shipped_default_keeps_path_mtu_discovery(case: Rule, allowed: bool) -> None:
    assert (policy.evaluate(case, SHIPPED) is None) == allowed


def test_icmp_udp_entries() -> None:
    rules_policy = with_allowed(policy.parse_allowed_ports("443,udp:443,udp:51820,icmp,icmpv6:128:0"))
    assert policy.evaluate(rule("icmp", 8, 0), rules_policy) is None
    assert policy.evaluate(rule("icmp", -1, -1), rules_policy) is None
    assert policy.evaluate(rule("icmpv6", 128, 0, v6="::/0"), rules_policy) is None
    assert policy.evaluate(rule("icmpv6", 128, -1, v6="::/0"), rules_policy) is not None
    assert policy.evaluate(rule("udp", 443), rules_policy) is None
    assert policy.evaluate(rule("udp", 51820), rules_policy) is None
    assert policy.evaluate(rule("udp", 443, 444), rules_policy) is not None
    assert policy.evaluate(rule("tcp", 51820), rules_policy) is not None


@pytest.mark.parametrize(("cidr", "v4", "v6", "world"), [
    ("0.0.0.0/0", 0, 0, True),
    ("0.0.0.0/1", 0, 0, False),
    ("0.0.0.0/1", 1, 0, True),
    ("128.0.0.0/1", 1, 0, True),
    ("128.0.0.0/2", 1, 0, False),
    ("10.0.0.0/8", 8, 0, False),  # private networks never count
    ("11.0.0.0/8", 8, 0, True),
    ("::/0", 0, 0, True),
    ("8000::/1", 0, 1, True),
    ("8000::/1", 1, 0, False),
    ("fc00::/7", 0, 8, False),
    ("2001:db8::/32", 0, 16, False),
])
def test_world_is_configurable(cidr: str, v4: int, v6: int, world: bool) -> None:
    assert World(v4, v6).contains(cidr) == world
    source = {"v6": cidr} if ":" in cidr else {"v4": cidr}
    case = rule("tcp", 22, **source)  # type: ignore[arg-type]
    assert (policy.evaluate(case, with_allowed(TCP_ONLY.allowed, world=World(v4, v6))) is not None) == world


def test_prefix_list_holding_the_world_is_world_open() -> None:
    lists = {"pl-office": ("198.51.100.0/24",), "pl-open": ("203.0.113.0/24", "0.0.0.0/0")}
    finding = policy.evaluate(rule("tcp", 22, prefix_list="pl-open"), TCP_ONLY, lists)
    assert finding is not None
    assert finding.reason.startswith("tcp 22 is open to prefix list pl-open (holds 0.0.0.0/0)")
    assert policy.evaluate(rule("tcp", 443, prefix_list="pl-open"), TCP_ONLY, lists) is None
    assert policy.evaluate(rule("tcp", 22, prefix_list="pl-office"), TCP_ONLY, lists) is None
    assert policy.evaluate(rule("tcp", 22, prefix_list="pl-unknown"), TCP_ONLY, lists) is None


def test_egress_is_judged_only_when_asked() -> None:
    case = rule("tcp", 25, egress=True)
    assert policy.evaluate(case, TCP_ONLY) is None
    for egress in ("report", "enforce"):
        finding = policy.evaluate(case, with_allowed(TCP_ONLY.allowed, egress=egress))
        assert finding is not None and "reaches 0.0.0.0/0" in finding.reason
    assert policy.evaluate(rule("tcp", 443, egress=True), with_allowed(TCP_ONLY.allowed, egress="enforce")) is None


def test_rule_summary_and_report() -> None:
    assert rule("tcp", 20, 25).summary() == "tcp 20-25 from 0.0.0.0/0"
    assert rule("-1", None).summary() == "all traffic from 0.0.0.0/0"
    assert rule("icmp", -1, -1).summary() == "icmp all types from 0.0.0.0/0"
    assert rule("icmp", 3, 4).summary() == "icmp type 3 code 4 from 0.0.0.0/0"
    assert rule("tcp", 22, group="sg-9").summary() == "tcp 22 from group sg-9"
    assert rule("-1", None, egress=True).summary() == "egress all traffic to 0.0.0.0/0"
    assert rule("udp", 53, rule_id="sgr-x").as_report() == {
        "ruleId": "sgr-x", "direction": "ingress", "protocol": "udp", "ports": "53", "source": "0.0.0.0/0"}


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


icmp_entries = st.tuples(st.sampled_from([None, 0, 2, 3, 8, 11]), st.sampled_from([None, 0, 4]))


@st.composite
def allowed_texts(draw: st.DrawFn) -> str:
    items = []
    for prefix in ("", "udp:"):
        for low, width in draw(st.lists(st.tuples(st.integers(0, 3000), st.integers(0, 1500)), max_size=4)):
            items.append(prefix + policy.format_range(low, min(low + width, 65535)))
    for family in ("icmp", "icmpv6"):
        for icmp_type, code in draw(st.lists(icmp_entries, max_size=3)):
            if icmp_type is None:
                items.append(family)
            else:
                items.append(f"{family}:{icmp_type}" + ("" if code is None else f":{code}"))
    draw(st.randoms()).shuffle(items)
    return ",".join(items) or "none"


def covered_by(text: str, protocol: str, from_port: int, to_port: int) -> bool:
    """Whether the allowed entries of ``text`` cover everything the rule opens: by enumeration, entry by entry."""
    entries = [] if text == "none" else text.split(",")
    if protocol in ("tcp", "udp"):
        ports_allowed = set()
        for entry in entries:
            family, _, spec = entry.rpartition(":")
            if (family or "tcp") == protocol and not spec.startswith("icmp"):
                low, _, high = spec.partition("-")
                ports_allowed |= set(range(int(low), int(high or low) + 1))
        # a -1 bound (as EC2 answers for "all ports") opens the whole range
        low, high = sorted((0 if from_port < 0 else from_port, 65535 if to_port < 0 else to_port))
        return all(port in ports_allowed for port in range(low, high + 1))
    if protocol in ("icmp", "icmpv6"):
        pairs = []
        for entry in entries:
            parts = entry.split(":")
            if parts[0] == protocol:
                pairs.append((int(parts[1]) if len(parts) > 1 else None, int(parts[2]) if len(parts) > 2 else None))
        types = range(256) if from_port == -1 else [from_port]
        codes = range(256) if from_port == -1 or to_port == -1 else [to_port]
        return all(any((t is None or t == ty) and (c is None or c == co) for t, c in pairs)
                   for ty in types for co in codes)
    return False  # all traffic, GRE, ESP ...: no entry covers them


def is_world(cidr: str, max_v4: int, max_v6: int) -> bool:
    network = ipaddress.ip_network(cidr, strict=False)
    widest = max_v4 if network.version == 4 else max_v6
    return network.num_addresses >= 2 ** (network.max_prefixlen - widest) and not network.is_private


sources = st.sampled_from([
    {"v4": "0.0.0.0/0"}, {"v6": "::/0"}, {"v4": "0.0.0.0/1"}, {"v4": "128.0.0.0/1"}, {"v4": "64.0.0.0/2"},
    {"v6": "8000::/1"}, {"v4": "10.0.0.0/8"}, {"v4": "203.0.113.0/24"}, {"v6": "2001:db8::/32"},
    {"prefix_list": "pl-open"}, {"prefix_list": "pl-half"}, {"prefix_list": "pl-office"},
    {"group": "sg-0fedcba9876543210"},
])
PREFIX_LISTS = {"pl-open": ("198.51.100.0/24", "0.0.0.0/0"), "pl-half": ("128.0.0.0/1",),
                "pl-office": ("198.51.100.0/24", "2001:db8::/48")}
rule_ports = st.one_of(
    st.tuples(st.integers(0, 4600), st.integers(0, 60)).map(lambda t: (t[0], t[0] + t[1])),
    st.just((0, 65535)),
    st.tuples(st.sampled_from([-1, 0, 2, 3, 8, 11, 128]), st.sampled_from([-1, 0, 4])),
)


@settings(max_examples=300, deadline=None)
@given(text=allowed_texts(), protocol=protocols, rule_range=rule_ports, source=sources,
       max_v4=st.integers(0, 2), max_v6=st.integers(0, 2))
def test_a_rule_is_revoked_iff_world_open_on_something_no_allowed_entry_covers(
    text: str, protocol: str, rule_range: tuple[int, int], source: dict[str, str], max_v4: int, max_v6: int
) -> None:
    rules_policy = Policy(policy.parse_allowed_ports(text), EXEMPT, World(max_v4, max_v6))
    case = rule(protocol, rule_range[0], rule_range[1], **source)  # type: ignore[arg-type]
    plan = policy.plan_run([(group("sg-1"), [case])], rules_policy, "enforce", 1000, PREFIX_LISTS)
    revoked = [f.rule.rule_id for p in plan.to_revoke for f in p.findings]

    cidrs = PREFIX_LISTS.get(source.get("prefix_list", ""), ()) or tuple(
        value for key, value in source.items() if key in ("v4", "v6"))
    world = any(is_world(cidr, max_v4, max_v6) for cidr in cidrs)
    normalized = policy.normalize_protocol(protocol)
    assert (revoked == [case.rule_id]) == (world and not covered_by(text, normalized, case.from_port or 0,
                                                                       -1 if case.to_port is None else case.to_port))


@st.composite
def allowed_sets(draw: st.DrawFn) -> AllowedPorts:
    return policy.parse_allowed_ports(draw(allowed_texts()))


@SETTINGS
@given(protocols, ports, ports, narrow_cidrs(), allowed_sets())
def test_narrower_sources_are_never_findings(protocol: str, a: int, b: int, source: dict[str, str],
                                             allowed: AllowedPorts) -> None:
    case = rule(protocol, min(a, b), max(a, b), **source)  # type: ignore[arg-type]
    assert policy.evaluate(case, with_allowed(allowed)) is None


@SETTINGS
@given(protocols, ports, ports, world_sources, allowed_sets())
def test_egress_is_never_a_finding_with_egress_off(protocol: str, a: int, b: int, source: dict[str, str],
                                                   allowed: AllowedPorts) -> None:
    case = rule(protocol, min(a, b), max(a, b), egress=True, **source)  # type: ignore[arg-type]
    assert policy.evaluate(case, with_allowed(allowed)) is None


@SETTINGS
@given(st.sampled_from(["-1", "all", "47", "50"]), ports, ports, world_sources, allowed_sets())
def test_world_all_traffic_and_other_protocols_are_always_findings(protocol: str, a: int, b: int,
                                                                   source: dict[str, str],
                                                                   allowed: AllowedPorts) -> None:
    case = rule(protocol, min(a, b), max(a, b), **source)  # type: ignore[arg-type]
    finding = policy.evaluate(case, with_allowed(allowed))
    assert finding is not None and finding.reason


# --------------------------------------------------------------------------- the run plan


def group(group_id: str, tags: dict[str, str] | None = None) -> Group:
    return Group(group_id=group_id, name=group_id, vpc_id="vpc-1", owner_id="123456789012", region="us-east-1",
                 tags=tags or {})


def test_plan_keeps_allowed_world_rules_for_the_report() -> None:
    rules = [rule("tcp", 22, rule_id="a"), rule("tcp", 443, rule_id="b"), rule("tcp", 22, v4="10.0.0.0/8", rule_id="c")]
    plan = policy.plan_run([(group("sg-1"), rules)], TCP_ONLY, "enforce", 50)
    (only,) = plan.groups
    assert [f.rule.rule_id for f in only.findings] == ["a"]
    assert [r.rule_id for r in only.allowed_open] == ["b"]
    assert only.action == "revoke"


def test_groups_without_findings_are_not_planned() -> None:
    plan = policy.plan_run([(group("sg-1"), [rule("tcp", 443)])], TCP_ONLY, "enforce", 50)
    assert plan.groups == () and plan.total_findings == 0


def test_an_exempt_rule_is_reported_and_the_rest_of_its_group_revoked() -> None:
    rules = [rule("tcp", 22, rule_id="a", tags={"AutoRemediate": "False"}), rule("tcp", 23, rule_id="b")]
    plan = policy.plan_run([(group("sg-1"), rules)], TCP_ONLY, "enforce", 50)
    assert [[f.rule.rule_id for f in p.findings] for p in plan.to_revoke] == [["b"]]
    (left,) = plan.report_only
    assert [f.rule.rule_id for f in left.findings] == ["a"]
    assert left.why == "the rule is tagged AutoRemediate=false"
    assert plan.guard_tripped is False


def test_egress_report_is_never_revoked_and_egress_enforce_is() -> None:
    rules = [rule("-1", None, egress=True, rule_id="out"), rule("tcp", 22, rule_id="in")]
    reported = policy.plan_run([(group("sg-1"), rules)], with_allowed(TCP_ONLY.allowed, egress="report"),
                               "enforce", 50)
    assert [(p.egress, [f.rule.rule_id for f in p.findings]) for p in reported.to_revoke] == [(False, ["in"])]
    assert [(p.egress, p.why) for p in reported.report_only] == [(True, "egress: report")]
    enforced = policy.plan_run([(group("sg-1"), rules)], with_allowed(TCP_ONLY.allowed, egress="enforce"),
                               "enforce", 50)
    assert sorted((p.egress, p.findings[0].rule.rule_id) for p in enforced.to_revoke) == [(False, "in"), (True, "out")]
    in_report_mode = policy.plan_run([(group("sg-1"), rules)], with_allowed(TCP_ONLY.allowed, egress="enforce"),
                                     "report", 50)
    assert in_report_mode.to_revoke == []


@SETTINGS
@given(
    st.lists(st.tuples(st.integers(0, 4), st.booleans(), st.integers(0, 2)), min_size=0, max_size=8),
    st.sampled_from(["enforce", "report"]),
    st.integers(1, 10),
)
def test_plan_never_revokes_more_than_max_changes_nor_in_report_mode_nor_exempt(
    shape: list[tuple[int, bool, int]], mode: str, max_changes: int
) -> None:
    groups = []
    for index, (count, exempt, exempt_rules) in enumerate(shape):
        tags = {"AutoRemediate": "false"} if exempt else {}
        rules = [rule("tcp", 1000 + n, rule_id=f"sgr-{index}-{n}",
                      tags={"AutoRemediate": "false"} if n < exempt_rules else None) for n in range(count)]
        groups.append((group(f"sg-{index}", tags), rules))
    plan = policy.plan_run(groups, TCP_ONLY, mode, max_changes)
    revoking = sum(len(p.findings) for p in plan.to_revoke)
    assert revoking <= max_changes
    if mode == "report":
        assert revoking == 0
    assert all(not EXEMPT.matches(p.group.tags) for p in plan.to_revoke)
    assert all(not EXEMPT.matches(f.rule.tags) for p in plan.to_revoke for f in p.findings)
    assert plan.total_findings == sum(count for count, _, _ in shape)
    actionable = sum(max(count - exempt_rules, 0) for count, exempt, exempt_rules in shape if not exempt)
    assert plan.guard_tripped == (mode == "enforce" and actionable > max_changes)
    if mode == "enforce" and not plan.guard_tripped:
        assert revoking == actionable
