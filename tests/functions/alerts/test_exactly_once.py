"""Each alert reaches each live destination exactly once across Lambda's retries; what a destination
cannot take is kept with the rendered message and the reason, and does not fail the invocation."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from alerts import delivery, handler
from alerts.alert import with_origin
from alerts.config import Config
from alerts.formatters import Options, alerts_from_event
from alerts.render import render
from tests.functions.alerts.aws_env import AlertsAws, alerts_aws
from tests.functions.alerts.conftest import Receiver, Reply, load
from tests.lifetime.kit import ACCOUNT, LambdaRuntime

HEALTHY = "/slack/T000/B000/HEALTHY"
OTHER = "/teams/workflow?sig=OTHER"
GONE = "/hook/GONE"


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[AlertsAws]:
    with alerts_aws(monkeypatch) as env:
        yield env


@pytest.fixture(autouse=True)
def _fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Config, "policy", lambda self, remaining=None: delivery.Policy(
        timeout=2.0, sleep=lambda _: None, remaining=remaining))


def _destinations(receiver: Receiver, *paths: tuple[str, str]) -> dict[str, Any]:
    return {"destinations": [{"type": kind, "url": receiver.url + path} for kind, path in paths]}


def test_a_deleted_webhook_does_not_duplicate_the_healthy_one_nor_fail_the_event(
    aws: AlertsAws, receiver: Receiver
) -> None:
    aws.put_destinations(_destinations(receiver, ("slack", HEALTHY), ("webhook", GONE)))
    receiver.plan(GONE, *[Reply(404, b"no_service")] * 10)
    runtime = LambdaRuntime(handler.handler)
    for name in ("sns_alarm_alarm", "eventbridge_guardduty"):
        runtime.invoke_async(load(name))
    assert len(receiver.bodies(HEALTHY)) == 2
    assert len(receiver.bodies(GONE)) == 2  # one try per alert: a 404 is not retried
    assert runtime.failures == []
    kept = aws.kept()
    assert [item["destination"] for item in kept] == ["webhook#1", "webhook#1"]
    assert all("404" in item["reason"] and item["gone"] for item in kept)
    (alarm,) = alerts_from_event(load("sns_alarm_alarm"), Options(region=os.environ["AWS_REGION"]))
    alarm = with_origin(alarm, ACCOUNT, lambda _account: None)  # as delivered: naming its account and region
    assert kept[0]["message"] == render("webhook", alarm)
    assert kept[0]["alert"]["title"] == alarm.title


def test_a_500_on_one_destination_is_retried_there_only(aws: AlertsAws, receiver: Receiver) -> None:
    aws.put_destinations(_destinations(receiver, ("slack", HEALTHY), ("teams", OTHER)))
    receiver.plan(OTHER, Reply(500), Reply(500), Reply(500))  # the first invocation's three tries
    runtime = LambdaRuntime(handler.handler)
    last = runtime.invoke_async(load("eventbridge_ec2_state"))
    assert last.attempt == 2 and last.error is None
    assert len(receiver.bodies(HEALTHY)) == 1
    assert len(receiver.bodies(OTHER)) == 4
    assert runtime.failures == [] and aws.kept() == []


def test_a_destination_failing_on_every_attempt_is_kept_after_the_last_one(
    aws: AlertsAws, receiver: Receiver
) -> None:
    aws.put_destinations(_destinations(receiver, ("slack", HEALTHY), ("teams", OTHER)))
    receiver.plan(OTHER, *[Reply(503)] * 20)
    runtime = LambdaRuntime(handler.handler)
    last = runtime.invoke_async(load("sns_alarm_alarm"))
    assert last.attempt == 3 and last.error is None  # the last attempt keeps instead of raising
    assert len(receiver.bodies(HEALTHY)) == 1
    assert len(receiver.bodies(OTHER)) == 9
    (kept,) = aws.kept()
    assert kept["destination"] == "teams#1" and "HTTP 503" in kept["reason"] and not kept["gone"]
    assert kept["message"]["attachments"][0]["content"]["type"] == "AdaptiveCard"
    assert runtime.failures == []


def test_the_same_event_twice_is_sent_once(aws: AlertsAws, receiver: Receiver) -> None:
    aws.put_destinations(_destinations(receiver, ("slack", HEALTHY)))
    runtime = LambdaRuntime(handler.handler)
    runtime.invoke_async(load("sns_alarm_alarm"))
    result = runtime.invoke_async(load("sns_alarm_alarm")).result
    assert len(receiver.bodies(HEALTHY)) == 1
    assert result["delivered"] == 0 and result["already_delivered"] == 1
