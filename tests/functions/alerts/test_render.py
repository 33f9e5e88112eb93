"""Slack, Teams and webhook payloads: snapshots over every fixture, and the destinations' limits."""

from __future__ import annotations

import base64
import gzip
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from syrupy.assertion import SnapshotAssertion

from alerts import render
from alerts.alert import Alert, Link
from alerts.formatters import Options, alerts_from_event
from tests.functions.alerts.conftest import EVENT_NAMES, load

OPTIONS = Options(region="eu-central-1", max_log_lines=20)
RENDERED = [name for name in EVENT_NAMES if name != "logs_control"]


def _alert(name: str) -> Alert:
    (alert,) = alerts_from_event(load(name), OPTIONS)
    return alert


def assert_slack_limits(payload: dict[str, Any]) -> None:
    blocks = payload["blocks"]
    assert len(blocks) <= render.SLACK_MAX_BLOCKS
    assert len(payload["text"]) <= render.SLACK_TEXT_CHARS
    for block in blocks:
        if block["type"] == "header":
            assert len(block["text"]["text"]) <= render.SLACK_HEADER_CHARS
        if block["type"] == "section":
            if "text" in block:
                assert len(block["text"]["text"]) <= render.SLACK_SECTION_CHARS
            for item in block.get("fields", []):
                assert len(item["text"]) <= render.SLACK_FIELD_CHARS
            assert len(block.get("fields", [])) <= render.SLACK_FIELDS_PER_SECTION
        if block["type"] == "actions":
            assert len(block["elements"]) <= render.SLACK_MAX_BUTTONS


def teams_bytes(payload: dict[str, Any]) -> int:
    return len(render.wire_bytes(payload))


@pytest.mark.parametrize("name", RENDERED)
def test_slack_payload(name: str, snapshot: SnapshotAssertion) -> None:
    payload = render.render_slack(_alert(name))
    assert_slack_limits(payload)
    assert payload == snapshot


@pytest.mark.parametrize("name", RENDERED)
def test_teams_payload(name: str, snapshot: SnapshotAssertion) -> None:
    payload = render.render_teams(_alert(name))
    assert payload["type"] == "message"
    (attachment,) = payload["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    assert attachment["content"]["type"] == "AdaptiveCard"
    assert teams_bytes(payload) <= render.TEAMS_MAX_BYTES
    assert payload == snapshot


WEBHOOK_FIXTURES = ["sns_alarm_alarm", "logs_data", "eventbridge_guardduty", "eventbridge_alarm_metric_math",
                    "eventbridge_securityhub_findings", "eventbridge_inspector_finding",
                    "eventbridge_guardduty_malware_scan", "eventbridge_backup_job_failed",
                    "eventbridge_config_noncompliant", "eventbridge_acm_expiring", "eventbridge_trusted_advisor"]


@pytest.mark.parametrize("name", WEBHOOK_FIXTURES)
def test_webhook_payload(name: str, snapshot: SnapshotAssertion) -> None:
    payload = render.render_webhook(_alert(name))
    assert set(payload) >= {"title", "severity", "summary", "fields", "links", "resource", "time", "source"}
    assert payload == snapshot


def test_slack_escapes_mrkdwn_control_characters() -> None:
    payload = render.render_slack(_alert("sns_alarm_alarm"))
    summary = payload["blocks"][1]["text"]["text"]
    assert "above 80% &amp; rising &lt;check autoscaling&gt;" in summary


def test_ten_thousand_log_events_become_one_slack_message_within_limits() -> None:
    messages = [f"[ERROR] request {i} failed: " + "<payload & more> " * 40 for i in range(10_000)]
    payload = {
        "messageType": "DATA_MESSAGE", "owner": "123456789012", "logGroup": "/aws/lambda/orders-api",
        "logStream": "2026/11/28/[$LATEST]abc", "subscriptionFilters": ["opsauto-alerts"],
        "logEvents": [{"id": str(i), "timestamp": 1795853131000 + i, "message": m} for i, m in enumerate(messages)],
    }
    event = {"awslogs": {"data": base64.b64encode(gzip.compress(json.dumps(payload).encode())).decode()}}
    alerts = alerts_from_event(event, Options(region="eu-central-1", max_log_lines=200))
    assert len(alerts) == 1
    slack = render.render_slack(alerts[0])
    assert_slack_limits(slack)
    assert "10,000 matching log lines" in slack["text"]
    sections = [b["text"]["text"] for b in slack["blocks"] if b["type"] == "section" and "text" in b]
    code = next(text for text in sections if text.startswith("```"))
    assert code.endswith("… (truncated)\n```")
    teams = render.render_teams(alerts[0])
    assert teams_bytes(teams) <= render.TEAMS_MAX_BYTES


def test_huge_alert_is_cut_to_every_limit() -> None:
    alert = Alert(
        title="T" * 500,
        severity="critical",
        summary="S & <b> " * 5_000,
        source="test",
        fields=tuple((f"field {i}", "v" * 5_000) for i in range(25)),
        links=tuple(Link(f"link {i} " + "x" * 100, f"https://example.com/{i}") for i in range(9)),
        details="line\n" * 20_000,
    )
    slack = render.render_slack(alert)
    assert_slack_limits(slack)
    assert slack["blocks"][0]["text"]["text"].endswith("… (truncated)")
    assert sum(1 for b in slack["blocks"] if "fields" in b) == 3
    teams = render.render_teams(alert)
    assert teams_bytes(teams) <= render.TEAMS_MAX_BYTES


def test_slack_truncation_does_not_split_an_entity() -> None:
    text = render._slack_text("a" * 2_980 + "&&&&&&&&&&&&&&&&&&&&&&&&&&&&&&", 3_000)
    assert len(text) <= 3_000
    body = text.removesuffix("… (truncated)")
    assert not body.endswith("&") and not body.endswith("&am") and body.count("&") == body.count("&amp;")


texts = st.text(alphabet=st.sampled_from("ab &<>*_`\n\"é🔴"), max_size=4_000)


@settings(max_examples=40, deadline=None)
@given(
    title=texts,
    summary=texts,
    details=texts,
    severity=st.sampled_from(["info", "warning", "critical"]),
    fields=st.lists(st.tuples(st.text(max_size=30), texts), max_size=25),
)
def test_any_alert_fits_slack_and_teams(title: str, summary: str, details: str, severity: str,
                                        fields: list[tuple[str, str]]) -> None:
    alert = Alert(title=title or "t", severity=severity, summary=summary, source="prop", fields=tuple(fields),
                  details=details, links=(Link("console", "https://example.com/x"),))
    assert_slack_limits(render.render_slack(alert))
    assert teams_bytes(render.render_teams(alert)) <= render.TEAMS_MAX_BYTES
    assert json.dumps(render.render_webhook(alert))


@pytest.mark.parametrize("region,host", [
    ("eu-central-1", "https://eu-central-1.console.aws.amazon.com"),
    ("cn-north-1", "https://console.amazonaws.cn"),
    ("us-gov-west-1", "https://console.amazonaws-us-gov.com"),
])
def test_console_host_per_partition(region: str, host: str) -> None:
    from alerts.alert import alarm_url, console_base

    assert console_base(region) == host
    assert alarm_url(region, "a/b").startswith(f"{host}/cloudwatch/home?region={region}#alarmsV2:alarm/a%2Fb")


def test_report_markdown_becomes_slack_mrkdwn() -> None:
    alert = Alert(title="t", severity="info", source="s",
                  summary="Closed **tcp/22** on [sg-1](https://console.example/sg-1) & told <alice>")
    text = render.render_slack(alert)["blocks"][1]["text"]["text"]
    assert text == "Closed *tcp/22* on <https://console.example/sg-1|sg-1> &amp; told &lt;alice&gt;"
