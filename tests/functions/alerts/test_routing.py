"""Routing: filters in the destinations secret, validated per destination; every alert goes to exactly the
destinations whose filters match, the default ones catch the rest, and nothing is dropped silently."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alerts.alert import Alert, Route, at_least
from alerts.delivery import DestinationsError, read_destinations
from alerts.formatters import Options, alerts_from_event
from alerts.routing import Filters, parse_filters, route
from shared.reports import SEVERITIES
from tests.functions.alerts.conftest import load

SOURCES = ["alarm", "logs", "report", "sns", "aws.guardduty", "aws.securityhub", "aws.backup"]
ACCOUNTS = ["111111111111", "222222222222"]
REGIONS = ["eu-west-1", "us-east-1"]
NAMES = ["prod-api 5xx", "prod-db cpu", "staging-api 5xx", "/aws/lambda/orders", ""]
PATTERNS = ["prod-*", "*5xx", "/aws/lambda/*", "staging-*"]

routes = st.builds(Route, sources=st.lists(st.sampled_from(SOURCES), min_size=1, max_size=2).map(tuple),
                   account=st.sampled_from(ACCOUNTS), region=st.sampled_from(REGIONS), name=st.sampled_from(NAMES))
filters = st.builds(
    Filters,
    min_severity=st.sampled_from(SEVERITIES),
    sources=st.lists(st.sampled_from(SOURCES), max_size=2, unique=True).map(tuple),
    accounts=st.lists(st.sampled_from(ACCOUNTS), max_size=1).map(tuple),
    regions=st.lists(st.sampled_from(REGIONS), max_size=1).map(tuple),
    names=st.lists(st.sampled_from(PATTERNS), max_size=2, unique=True).map(tuple),
    default=st.booleans(),
)


def _matches(f: Filters, severity: str, where: Route) -> bool:
    """The documented rule, spelled out filter by filter."""
    import fnmatch

    checks = [at_least(severity, f.min_severity)]
    if f.sources:
        checks.append(bool(set(f.sources) & set(where.sources)))
    if f.accounts:
        checks.append(where.account in f.accounts)
    if f.regions:
        checks.append(where.region in f.regions)
    if f.names:
        checks.append(any(fnmatch.fnmatchcase(where.name, p) for p in f.names))
    return all(checks)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(SEVERITIES), routes, st.lists(filters, max_size=6))
def test_an_alert_goes_to_exactly_the_matching_destinations(severity: str, where: Route,
                                                            destinations: list[Filters]) -> None:
    routed = route(severity, where, destinations)
    regular = {i for i, f in enumerate(destinations) if not f.default and _matches(f, severity, where)}
    defaults = {i for i, f in enumerate(destinations) if f.default and _matches(f, severity, where)}
    if regular:
        assert set(routed.indexes) == regular and not routed.fallback
    else:
        assert set(routed.indexes) == defaults and routed.fallback == bool(defaults)
    # Never to a destination whose filters do not match; never to none while a destination matches.
    assert all(_matches(destinations[i], severity, where) for i in routed.indexes)
    assert routed.indexes or not (regular or defaults)


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(SEVERITIES), routes)
def test_a_destination_without_filters_gets_everything(severity: str, where: Route) -> None:
    assert route(severity, where, [Filters()]).indexes == (0,)


def test_routing_as_documented() -> None:
    """prod alarms to #prod-alerts, security findings to #security, everything else to #ops."""
    secret = {"destinations": [
        {"type": "slack", "url": "https://hooks.slack.com/services/T/B/prod", "sources": ["alarm"],
         "names": ["prod-*"]},
        {"type": "slack", "url": "https://hooks.slack.com/services/T/B/security",
         "sources": ["aws.guardduty", "aws.securityhub", "aws.inspector2"], "min_severity": "warning"},
        {"type": "slack", "url": "https://hooks.slack.com/services/T/B/ops", "default": True},
    ]}
    destinations = read_destinations(secret).valid
    where = {
        "sns_alarm_alarm": ["slack#2"],  # "web-1 high CPU" is not a prod-* alarm
        "eventbridge_guardduty": ["slack#1"],
        "logs_data": ["slack#2"],
        "sns_action_report": ["slack#2"],
    }
    for name, expected in where.items():
        (alert,) = alerts_from_event(load(name), Options())
        routed = route(alert.severity, alert.route, [d.filters for d in destinations])
        assert [destinations[i].name for i in routed.indexes] == expected, name
    prod = load("eventbridge_alarm_state_change")
    prod["detail"]["alarmName"] = "prod-orders p99 latency"
    (alert,) = alerts_from_event(prod, Options())
    assert route(alert.severity, alert.route, [d.filters for d in destinations]).indexes == (0,)


@pytest.mark.parametrize(("name", "sources", "account", "region", "named"), [
    ("sns_alarm_alarm", ("alarm",), "123456789012", "eu-central-1", "web-1 high CPU"),
    ("eventbridge_alarm_state_change", ("alarm", "aws.cloudwatch"), "123456789012", "eu-central-1",
     "orders-api p99 latency"),
    ("logs_data", ("logs",), "123456789012", "us-east-1", "/aws/lambda/orders-api"),
    ("sns_action_report", ("report",), "123456789012", "eu-central-1",
     "Closed SSH open to the internet on sg-0123456789abcdef0"),
    ("eventbridge_guardduty", ("aws.guardduty",), "123456789012", "eu-central-1", ""),
    ("sns_plain_text", ("sns",), "123456789012", "eu-central-1", "Backup finished"),
])
def test_every_kind_has_its_route(name: str, sources: tuple[str, ...], account: str, region: str,
                                  named: str) -> None:
    (alert,) = alerts_from_event(load(name), Options())
    assert alert.route == Route(sources, account, region, named)


@pytest.mark.parametrize(("entry", "message"), [
    ({"min_severity": "loud"}, "destinations[1].min_severity must be one of info, warning, critical"),
    ({"sources": "alarm"}, "destinations[1].sources must be a non-empty list"),
    ({"sources": ["Alarm!"]}, "destinations[1].sources: 'Alarm!' is not alarm, logs, report"),
    ({"accounts": ["12345"]}, "destinations[1].accounts: '12345' is not 12-digit account ids"),
    ({"regions": ["Europe"]}, "destinations[1].regions: 'Europe' is not region names"),
    ({"names": []}, "destinations[1].names must be a non-empty list of glob patterns"),
    ({"default": "yes"}, "destinations[1].default must be true or false"),
    ({"channel": "#ops"}, "destinations[1] has unknown key(s) channel"),
])
def test_a_bad_filter_names_the_destination_and_the_others_keep_working(entry: dict[str, Any],
                                                                         message: str) -> None:
    secret = {"destinations": [
        {"type": "slack", "url": "https://hooks.slack.com/services/T/B/ok"},
        {"type": "teams", "url": "https://example.com/SECRETPATH", **entry},
        {"type": "webhook", "url": "https://example.com/ok", "sources": ["alarm"]},
    ]}
    found = read_destinations(secret)
    assert [d.name for d in found.valid] == ["slack#0", "webhook#2"]
    (problem,) = found.problems
    assert problem.startswith(message) and "SECRETPATH" not in problem


def test_only_invalid_destinations_is_an_error() -> None:
    found = read_destinations({"destinations": [{"type": "slack", "url": "http://insecure"}]})
    assert found.valid == [] and found.problems == ["destinations[0].url must be an https:// URL"]
    with pytest.raises(DestinationsError):
        read_destinations("not json")


def test_filters_parse_as_given() -> None:
    f = parse_filters("d", {"min_severity": "warning", "sources": ["alarm", "alarm", "aws.backup"],
                            "accounts": ["111111111111"], "regions": ["eu-west-1"], "names": ["prod-*"],
                            "default": True})
    assert f == Filters("warning", ("alarm", "aws.backup"), ("111111111111",), ("eu-west-1",), ("prod-*",), True)
    alert = Alert(title="t", severity="critical", summary="", source="x",
                  route=Route(("aws.backup",), "111111111111", "eu-west-1", "prod-db"))
    assert f.matches(alert.severity, alert.route)
