"""The handler end to end: moto Secrets Manager + the local HTTPS receiver."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from alerts import delivery, handler
from alerts.config import Config
from alerts.delivery import DestinationsError
from alerts.runner import DeliveryError
from tests.conftest import FakeContext
from tests.functions.alerts.aws_env import alerts_aws
from tests.functions.alerts.conftest import Receiver, Reply, load

pytestmark = pytest.mark.usefixtures("own_role")  # every invocation under the synthesized role, moto IAM on


@pytest.fixture
def secret(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The function's AWS side on moto; returns a function that sets the destinations secret."""
    with alerts_aws(monkeypatch) as env:
        yield env.put_destinations


@pytest.fixture(autouse=True)
def _fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Config, "policy", lambda self, remaining=None: delivery.Policy(
        timeout=2.0, sleep=lambda _: None, remaining=remaining))


def _two(receiver: Receiver, teams_min: str = "info") -> dict[str, Any]:
    return {"destinations": [
        {"type": "slack", "url": receiver.url + "/slack/T000/B000/XXXXSECRET"},
        {"type": "teams", "url": receiver.url + "/teams/workflow?sig=XXXXSECRET", "min_severity": teams_min},
    ]}


def test_alarm_goes_to_slack_and_teams(secret: Any, receiver: Receiver, lambda_context: FakeContext) -> None:
    secret(_two(receiver))
    result = handler.handler(load("sns_alarm_alarm"), lambda_context)
    assert result == {"alerts": 1, "delivered": 2, "already_delivered": 0, "kept": 0, "unrouted": 0}
    (slack,) = receiver.bodies("/slack/T000/B000/XXXXSECRET")
    assert slack["text"].startswith(":red_circle: [CRITICAL] ALARM: web-1 high CPU")
    (teams,) = receiver.bodies("/teams/workflow?sig=XXXXSECRET")
    assert teams["attachments"][0]["content"]["type"] == "AdaptiveCard"


def test_destination_min_severity(secret: Any, receiver: Receiver, lambda_context: FakeContext) -> None:
    secret(_two(receiver, teams_min="critical"))
    assert handler.handler(load("sns_alarm_ok"), lambda_context)["delivered"] == 1
    assert len(receiver.received) == 1 and receiver.received[0].path.startswith("/slack")


def test_global_min_severity_drops_before_reading_the_secret(
    secret: Any, receiver: Receiver, lambda_context: FakeContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MIN_SEVERITY", "warning")
    monkeypatch.setenv("DESTINATIONS_SECRET_ARN", "arn:aws:secretsmanager:us-east-1:123456789012:secret:missing-AbCdEf")
    assert handler.handler(load("sns_plain_text"), lambda_context)["alerts"] == 0
    assert receiver.received == []


def test_control_message_sends_nothing(secret: Any, receiver: Receiver, lambda_context: FakeContext) -> None:
    secret(_two(receiver))
    assert handler.handler(load("logs_control"), lambda_context)["alerts"] == 0
    assert receiver.received == []


def test_log_batch_is_one_message(secret: Any, receiver: Receiver, lambda_context: FakeContext) -> None:
    secret({"destinations": [{"type": "slack", "url": receiver.url + "/slack"}]})
    handler.handler(load("logs_data"), lambda_context)
    (body,) = receiver.bodies("/slack")
    assert body["text"].startswith(":red_circle: [CRITICAL] 4 matching log lines in /aws/lambda/orders-api")


def test_one_destination_failing_raises_after_trying_the_other(
    secret: Any, receiver: Receiver, lambda_context: FakeContext, capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    secret(_two(receiver))
    receiver.plan("/slack/T000/B000/XXXXSECRET", Reply(500), Reply(500), Reply(500))
    with pytest.raises(DeliveryError, match=r"1 deliveries to retry: slack#0 HTTP 500"):
        handler.handler(load("eventbridge_ec2_state"), lambda_context)
    assert len(receiver.bodies("/slack/T000/B000/XXXXSECRET")) == 3
    assert len(receiver.bodies("/teams/workflow?sig=XXXXSECRET")) == 1
    output = capsys.readouterr()
    assert "XXXXSECRET" not in output.out + output.err + caplog.text
    assert '"AlertsFailed"' in output.out and '"AlertsSent"' in output.out
    assert "alert not delivered yet" in caplog.text


def test_webhook_gone_is_loud(
    secret: Any, receiver: Receiver, lambda_context: FakeContext, capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    secret({"destinations": [{"type": "webhook", "url": receiver.url + "/hook/XXXXSECRET"}]})
    receiver.plan("/hook/XXXXSECRET", Reply(404, b"no_service"))
    assert handler.handler(load("eventbridge_guardduty"), lambda_context)["kept"] == 1
    output = capsys.readouterr().out
    (record,) = [r for r in caplog.records if getattr(r, "webhook_gone", False)]
    assert record.levelname == "ERROR"
    assert '"WebhookGone"' in output and '"AlertsKept"' in output
    assert "XXXXSECRET" not in output + caplog.text
    (body,) = receiver.bodies("/hook/XXXXSECRET")
    assert body["source"] == "guardduty" and body["severity"] == "critical"


def test_empty_secret_warns_and_does_not_retry(
    secret: Any, receiver: Receiver, lambda_context: FakeContext, caplog: pytest.LogCaptureFixture
) -> None:
    assert handler.handler(load("sns_alarm_alarm"), lambda_context)["delivered"] == 0
    assert "lists no destination" in caplog.text


def test_malformed_secret_raises_so_the_event_is_kept(secret: Any, lambda_context: FakeContext) -> None:
    secret({"destinations": [{"type": "pager", "url": "https://x"}]})
    with pytest.raises(DestinationsError, match=r"destinations\[0\].type"):
        handler.handler(load("sns_alarm_alarm"), lambda_context)


def test_unreadable_logs_payload_is_dropped_with_a_warning(
    secret: Any, lambda_context: FakeContext, capsys: pytest.CaptureFixture[str]
) -> None:
    result = handler.handler({"awslogs": {"data": "bm90IGd6aXA="}}, lambda_context)
    assert result["dropped"] == "bad event"
    assert '"BadEvents"' in capsys.readouterr().out


def test_secret_is_cached_between_invocations(secret: Any, receiver: Receiver, lambda_context: FakeContext) -> None:
    secret({"destinations": [{"type": "slack", "url": receiver.url + "/first"}]})
    handler.handler(load("sns_plain_text"), lambda_context)
    secret({"destinations": [{"type": "slack", "url": receiver.url + "/second"}]})
    handler.handler(load("sns_alarm_alarm"), lambda_context)
    assert len(receiver.bodies("/first")) == 2 and receiver.bodies("/second") == []


def test_an_invalid_destination_is_skipped_and_an_unmatched_alert_counted(
    secret: Any, receiver: Receiver, lambda_context: FakeContext, capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    secret({"destinations": [
        {"type": "slack", "url": receiver.url + "/security", "sources": ["aws.guardduty"]},
        {"type": "teams", "url": receiver.url + "/bad", "regions": ["Europe"]},
    ]})
    assert handler.handler(load("eventbridge_guardduty"), lambda_context)["delivered"] == 1
    assert handler.handler(load("sns_alarm_alarm"), lambda_context)["unrouted"] == 1
    assert len(receiver.bodies("/security")) == 1 and receiver.bodies("/bad") == []
    output = capsys.readouterr().out
    assert '"DestinationsInvalid"' in output and '"AlertsUnrouted"' in output
    assert any("destinations[1].regions" in getattr(r, "reason", "") for r in caplog.records)
    assert "matched no destination" in caplog.text
