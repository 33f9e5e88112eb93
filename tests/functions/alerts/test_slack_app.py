"""Slack app mode against a local HTTPS stand-in of the Slack Web API (chat.postMessage, chat.update):
an ALARM opens a thread, its OK is answered in that thread and marks the original resolved."""

from __future__ import annotations

import dataclasses
import itertools
import json
from collections.abc import Iterator
from typing import Any

import pytest

from alerts import delivery, runner
from alerts.config import Config
from tests.conftest import FakeContext
from tests.functions.alerts.aws_env import AlertsAws, alerts_aws
from tests.functions.alerts.conftest import Receiver, Reply, load

TOKEN = "xoxb-000000000000-TESTTOKEN"


class SlackApi:
    """Answers /api/chat.postMessage and /api/chat.update as Slack does; a script can fail some calls."""

    def __init__(self, receiver: Receiver) -> None:
        self.receiver = receiver
        self.ts = (f"1795853{n:03d}.000100" for n in itertools.count(1))
        self.failures: list[Reply] = []
        receiver.responder = self.reply

    def reply(self, path: str, body: Any) -> Reply:
        if self.failures:
            return self.failures.pop(0)
        if path.endswith("/chat.postMessage"):
            answer = {"ok": True, "channel": "C0OPS", "ts": next(self.ts), "message": {"text": body.get("text")}}
        elif path.endswith("/chat.update"):
            answer = {"ok": True, "channel": body.get("channel"), "ts": body.get("ts")}
        else:
            answer = {"ok": False, "error": "unknown_method"}
        return Reply(200, json.dumps(answer).encode(), {"Content-Type": "application/json"})

    def calls(self, method: str) -> list[dict[str, Any]]:
        return [item.body for item in self.receiver.received if item.path.endswith(method)]


@pytest.fixture
def slack(receiver: Receiver, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[SlackApi, AlertsAws]]:
    import os

    monkeypatch.setenv("SSL_CERT_FILE", os.environ["REQUESTS_CA_BUNDLE"])  # slack_sdk uses the ssl module's trust
    monkeypatch.setattr(Config, "policy", lambda self, remaining=None: delivery.Policy(
        timeout=2.0, sleep=lambda _: None, remaining=remaining))
    with alerts_aws(monkeypatch) as env:
        env.put_destinations({"slack_bot_token": TOKEN, "destinations": [
            {"type": "slack-app", "token_secret_field": "slack_bot_token", "channel": "#ops"}]})
        yield SlackApi(receiver), env


def _run(event: Any, receiver: Receiver) -> dict[str, Any]:
    config = Config.from_env()
    ports = dataclasses.replace(runner.live_ports(config, FakeContext()), slack_api_url=receiver.url + "/api/")
    return runner.run(event, config, ports)


def _ok_of(alarm_event: dict[str, Any]) -> dict[str, Any]:
    event = json.loads(json.dumps(alarm_event))
    sns = event["Records"][0]["Sns"]
    message = json.loads(sns["Message"])
    message.update(NewStateValue="OK", OldStateValue="ALARM", NewStateReason="Threshold Crossed: back to normal")
    sns["Message"], sns["MessageId"] = json.dumps(message), "6a1b2c3d-0000-4000-8000-000000000002"
    return event


def test_alarm_opens_a_thread_and_its_ok_replies_and_resolves_it(slack: tuple[SlackApi, AlertsAws],
                                                                 receiver: Receiver) -> None:
    api, _ = slack
    alarm = load("sns_alarm_alarm")
    assert _run(alarm, receiver)["delivered"] == 1
    (first,) = api.calls("/chat.postMessage")
    assert first["channel"] == "#ops" and "thread_ts" not in first
    assert first["blocks"][0]["text"]["text"].startswith(":red_circle: ALARM: web-1 high CPU")
    assert all(item.headers["Authorization"] == f"Bearer {TOKEN}" for item in receiver.received)

    assert _run(_ok_of(alarm), receiver)["delivered"] == 1
    _, reply = api.calls("/chat.postMessage")
    assert reply["thread_ts"] == "1795853001.000100" and reply["text"].startswith(":large_blue_circle: [INFO] OK:")
    (update,) = api.calls("/chat.update")
    assert (update["channel"], update["ts"]) == ("C0OPS", "1795853001.000100")
    assert update["blocks"][0]["text"]["text"] == ":white_check_mark: RESOLVED: OK: web-1 high CPU"
    assert update["blocks"][1:] == first["blocks"][1:]


def test_an_ok_without_a_thread_is_posted_on_its_own(slack: tuple[SlackApi, AlertsAws], receiver: Receiver) -> None:
    api, _ = slack
    assert _run(load("sns_alarm_ok"), receiver)["delivered"] == 1
    (message,) = api.calls("/chat.postMessage")
    assert "thread_ts" not in message and api.calls("/chat.update") == []


def test_rate_limit_waits_and_retries(slack: tuple[SlackApi, AlertsAws], receiver: Receiver) -> None:
    api, _ = slack
    api.failures = [Reply(429, b'{"ok": false, "error": "ratelimited"}',
                          {"Retry-After": "1", "Content-Type": "application/json"})]
    assert _run(load("eventbridge_guardduty"), receiver)["delivered"] == 1
    assert len(api.calls("/chat.postMessage")) == 2


def test_an_archived_channel_is_kept_not_retried(slack: tuple[SlackApi, AlertsAws], receiver: Receiver) -> None:
    api, env = slack
    api.failures = [Reply(200, b'{"ok": false, "error": "is_archived"}', {"Content-Type": "application/json"})]
    assert _run(load("eventbridge_guardduty"), receiver)["kept"] == 1
    (kept,) = env.kept()
    assert kept["gone"] and "is_archived" in kept["reason"] and TOKEN not in json.dumps(kept)


def test_reports_of_one_run_share_a_thread(slack: tuple[SlackApi, AlertsAws], receiver: Receiver) -> None:
    api, _ = slack
    report = load("sns_action_report")
    message = json.loads(report["Records"][0]["Sns"]["Message"])
    message["metadata"]["threadId"] = "sg_remediation-3f0b4e36"
    for n in range(3):
        message["content"]["title"] = f"Closed SSH on sg-{n}"
        report["Records"][0]["Sns"]["Message"] = json.dumps(message)
        _run(report, receiver)
    first, *rest = api.calls("/chat.postMessage")
    assert "thread_ts" not in first and [m["thread_ts"] for m in rest] == ["1795853001.000100"] * 2


def test_a_bad_token_field_names_the_destination(slack: tuple[SlackApi, AlertsAws]) -> None:
    found = delivery.read_destinations({"destinations": [
        {"type": "slack-app", "token_secret_field": "missing", "channel": "#ops"}]})
    assert found.problems == ["destinations[0].token_secret_field: the secret's field 'missing' must hold a "
                              "Slack bot token (xoxb-...)"]
