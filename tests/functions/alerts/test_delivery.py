"""Delivery against a real HTTPS server on 127.0.0.1 (trustme CA via REQUESTS_CA_BUNDLE)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
import requests

from alerts import delivery
from alerts.delivery import Destination, DestinationsError, Policy, parse_destinations, retry_after_seconds
from tests.functions.alerts.conftest import Receiver, Reply

PAYLOAD = {"text": "hello"}


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def _post(receiver: Receiver, path: str, sleeps: Sleeps | None = None, **policy: float) -> delivery.Result:
    destination = Destination(type="slack", url=receiver.url + path)
    with requests.Session() as session:
        sleep = sleeps if sleeps is not None else Sleeps()
        return delivery.post(session, destination, PAYLOAD, Policy(sleep=sleep, **policy))  # type: ignore[arg-type]


def test_200_is_delivered_once(receiver: Receiver) -> None:
    result = _post(receiver, "/ok")
    assert result.ok and result.status == 200 and result.attempts == 1
    (received,) = receiver.received
    assert received.body == PAYLOAD
    assert received.headers["Content-Type"] == "application/json; charset=utf-8"


def test_429_waits_retry_after_then_succeeds(receiver: Receiver) -> None:
    receiver.plan("/busy", Reply(429, b"rate_limited", {"Retry-After": "3"}))
    sleeps = Sleeps()
    result = _post(receiver, "/busy", sleeps)
    assert result.ok and result.attempts == 2
    assert sleeps == [3.0]


def test_429_retry_after_is_capped(receiver: Receiver) -> None:
    receiver.plan("/busy", Reply(429, b"", {"Retry-After": "3600"}), Reply(429, b"", {"Retry-After": "3600"}),
                  Reply(429, b"", {"Retry-After": "3600"}))
    sleeps = Sleeps()
    result = _post(receiver, "/busy", sleeps, retry_after_cap=2.0)
    assert not result.ok and result.status == 429 and result.attempts == 3
    assert sleeps == [2.0, 2.0]


def test_500_then_200_retries_with_backoff(receiver: Receiver) -> None:
    receiver.plan("/flaky", Reply(500, b"oops"), Reply(503, b"oops"))
    sleeps = Sleeps()
    result = _post(receiver, "/flaky", sleeps, backoff_base=0.25)
    assert result.ok and result.attempts == 3
    assert sleeps == [0.25, 0.5]
    assert len(receiver.bodies("/flaky")) == 3


def test_404_is_gone_without_retry(receiver: Receiver) -> None:
    receiver.plan("/deleted", Reply(404, b"no_service"))
    sleeps = Sleeps()
    result = _post(receiver, "/deleted", sleeps)
    assert not result.ok and result.gone and result.status == 404 and result.attempts == 1
    assert sleeps == []


def test_410_is_gone(receiver: Receiver) -> None:
    receiver.plan("/archived", Reply(410, b"channel_is_archived"))
    assert _post(receiver, "/archived").gone


def test_400_fails_at_once_with_the_body_hint(receiver: Receiver) -> None:
    receiver.plan("/bad", Reply(400, b"invalid_payload"))
    result = _post(receiver, "/bad")
    assert not result.ok and not result.gone and result.attempts == 1
    assert result.reason == "HTTP 400: invalid_payload"


def test_timeout_is_retried_then_fails(receiver: Receiver) -> None:
    receiver.plan("/slow", Reply(200, delay=1.0), Reply(200, delay=1.0))
    sleeps = Sleeps()
    result = _post(receiver, "/slow", sleeps, timeout=0.2, max_attempts=2)
    assert not result.ok and result.reason == "timeout" and result.attempts == 2
    assert sleeps == [0.5]


def test_untrusted_certificate_is_a_connection_error(receiver: Receiver, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REQUESTS_CA_BUNDLE")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", requests.certs.where())
    result = _post(receiver, "/ok", max_attempts=1)
    assert not result.ok and result.reason == "connection error (SSLError)"
    assert receiver.received == []


def test_connection_refused_names_no_url(receiver: Receiver) -> None:
    destination = Destination(type="teams", url="https://127.0.0.1:9/secret-token-path")
    with requests.Session() as session:
        result = delivery.post(session, destination, PAYLOAD, Policy(sleep=Sleeps(), max_attempts=2))
    assert not result.ok and result.attempts == 2
    assert "secret-token-path" not in repr(result) and "127.0.0.1" not in repr(result)
    assert "secret-token-path" not in repr(destination)


def test_parse_destinations() -> None:
    found = parse_destinations('{"destinations": [{"type": "slack", "url": "https://hooks.example/a"}, '
                               '{"type": "teams", "url": "https://teams.example/b", "min_severity": "critical"}]}')
    assert [(d.name, d.min_severity) for d in found] == [("slack#0", "info"), ("teams#1", "critical")]
    assert parse_destinations({"destinations": []}) == []


@pytest.mark.parametrize(
    "value,message",
    [
        ("not json", "not JSON"),
        ("[]", '"destinations" list'),
        ({"destinations": [{"type": "email", "url": "https://x"}]}, "destinations[0].type must be one of"),
        ({"destinations": [{"type": "slack", "url": "http://hooks.example/TOKEN"}]}, "destinations[0].url"),
        ({"destinations": [{"type": "slack", "url": "https://x", "min_severity": "high"}]}, "min_severity"),
        ({"destinations": [{"type": "slack", "url": "https://x", "channel": "#ops"}]}, "unknown key(s) channel"),
    ],
)
def test_bad_destinations_are_named_without_the_url(value: object, message: str) -> None:
    with pytest.raises(DestinationsError) as caught:
        parse_destinations(value)
    assert message in str(caught.value)
    assert "TOKEN" not in str(caught.value)


def test_retry_after_forms() -> None:
    assert retry_after_seconds("2", cap=10) == 2
    assert retry_after_seconds("120", cap=10) == 10
    assert retry_after_seconds(None, cap=10) == 1
    assert retry_after_seconds("soon", cap=10) == 1
    now = datetime(2026, 11, 28, 8, 0, tzinfo=UTC)
    assert retry_after_seconds(format_datetime(now + timedelta(seconds=4), usegmt=True), cap=10,
                               now=now.timestamp()) == 4
    assert retry_after_seconds(format_datetime(now - timedelta(seconds=4), usegmt=True), cap=10,
                               now=now.timestamp()) == 0


def test_no_retry_started_without_time_left(receiver: Receiver) -> None:
    receiver.plan("/flaky", Reply(500), Reply(200))
    sleeps = Sleeps()
    destination = Destination(type="slack", url=receiver.url + "/flaky")
    with requests.Session() as session:
        result = delivery.post(session, destination, PAYLOAD, Policy(sleep=sleeps, timeout=5, remaining=lambda: 4.0))
    assert not result.ok and result.attempts == 1 and sleeps == []
    assert result.reason == "HTTP 500 (no time left in this invocation to retry)"
