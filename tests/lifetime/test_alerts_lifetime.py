"""alerts: a simulated day of mixed events to three destinations, one dying half-way, one flaky.

Events arrive as Lambda delivers them (asynchronous invocations with two retries, then an on-failure
record): CloudWatch alarms, action reports and plain messages through SNS, EventBridge events (EC2,
GuardDuty, CodeBuild, Health) and CloudWatch Logs batches, each carrying a token (``evt-00042``) that its
rendered message shows. The destinations are real HTTPS endpoints on 127.0.0.1:

- ``slack#0`` stays healthy;
- ``teams#1`` is flaky: bursts of HTTP 500 and 429 (``Retry-After``), some longer than every try of every
  invocation of an event;
- ``webhook#2`` (``min_severity: warning``) answers 200 until half-way through the day, then 404 for good.

AWS faults: the delivery table refuses a write now and then (throttled) and the secret's read is throttled
after a cold start.

Invariants, after every event:

- each alert reaches each live destination at most once, and once its event is done exactly once, unless
  what that destination could not take is kept (then it is kept exactly once);
- what is kept has the rendered message and the reason, and the AlertsKept metric counts every one;
- no destination failure becomes an on-failure record (only an injected AWS fault on the last attempt may),
  and a dead destination gets one request per alert, not a retry storm.

Short (make test): 200 events; long (make lifetime): 1,000.
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
import gzip
import json
import re
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from alerts import aws as alerts_aws_module
from alerts import delivery, handler
from alerts.alert import at_least
from alerts.config import Config
from alerts.formatters import Options, alerts_from_event
from tests.functions.alerts.aws_env import AlertsAws, alerts_aws
from tests.functions.alerts.conftest import Receiver, Reply, https_receiver, load
from tests.lifetime.kit import Fault, FaultInjector, LambdaRuntime, SimClock, Simulation, is_long

pytestmark = pytest.mark.lifetime

SEED = 13
EVENTS = 1_000 if is_long() else 200
HEALTHY, FLAKY, DYING = "/slack/T0/B0/HEALTHY", "/teams/workflow?sig=FLAKY", "/hook/DYING"
NAMES = {HEALTHY: "slack#0", FLAKY: "teams#1", DYING: "webhook#2"}
MIN_SEVERITY = {HEALTHY: "info", FLAKY: "info", DYING: "warning"}
TOKEN = re.compile(r"evt-(\d{5})")
ATTEMPTS = 3  # Lambda: one try and two retries


def _token(value: Any) -> int:
    found = TOKEN.search(json.dumps(value, ensure_ascii=False))
    assert found, f"no token in {value!r:.200}"
    return int(found.group(1))


# --------------------------------------------------------------------------- events of the day


def _sns(fixture: str, message: Any, when: str, subject: str | None = None) -> dict[str, Any]:
    event = copy.deepcopy(load(fixture))
    sns = event["Records"][0]["Sns"]
    sns["MessageId"] = str(uuid.uuid4())
    sns["Message"] = message if isinstance(message, str) else json.dumps(message)
    sns["Timestamp"] = when
    if subject is not None:
        sns["Subject"] = subject
    return event


def _alarm(n: int, when: str, rng: Any) -> dict[str, Any]:
    message = json.loads(load("sns_alarm_alarm")["Records"][0]["Sns"]["Message"])
    message["AlarmName"] = f"evt-{n:05d} high CPU"
    message["NewStateValue"] = rng.choice(["ALARM", "ALARM", "OK", "INSUFFICIENT_DATA"])
    message["StateChangeTime"] = when
    return _sns("sns_alarm_alarm", message, when)


def _report(n: int, when: str, rng: Any) -> dict[str, Any]:
    message = json.loads(load("sns_action_report")["Records"][0]["Sns"]["Message"])
    message["content"]["title"] = f"evt-{n:05d} closed SSH open to the internet"
    message["metadata"]["additionalContext"]["severity"] = rng.choice(["warning", "critical"])
    return _sns("sns_action_report", message, when)


def _text(n: int, when: str, rng: Any) -> dict[str, Any]:
    return _sns("sns_plain_text", f"Nightly backup evt-{n:05d} finished with {rng.randint(0, 5)} warnings.",
                when, subject=f"Backup evt-{n:05d}")


def _eventbridge(fixture: str, n: int, when: str, mark: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    event = copy.deepcopy(load(fixture))
    event["id"] = str(uuid.uuid4())
    event["time"] = when
    mark(event["detail"])
    return event


def _ec2(n: int, when: str, rng: Any) -> dict[str, Any]:
    def mark(detail: dict[str, Any]) -> None:
        detail["instance-id"] = f"i-evt-{n:05d}"
        detail["state"] = rng.choice(["stopped", "terminated", "running"])
    return _eventbridge("eventbridge_ec2_state", n, when, mark)


def _guardduty(n: int, when: str, rng: Any) -> dict[str, Any]:
    def mark(detail: dict[str, Any]) -> None:
        detail["title"] = f"evt-{n:05d} unusual API calls"
        detail["id"] = uuid.uuid4().hex
        detail["severity"] = rng.choice([2, 5, 8])
    return _eventbridge("eventbridge_guardduty", n, when, mark)


def _codebuild(n: int, when: str, rng: Any) -> dict[str, Any]:
    def mark(detail: dict[str, Any]) -> None:
        detail["project-name"] = f"evt-{n:05d}-tests"
    return _eventbridge("eventbridge_codebuild_failed", n, when, mark)


def _health(n: int, when: str, rng: Any) -> dict[str, Any]:
    def mark(detail: dict[str, Any]) -> None:
        detail["eventTypeCode"] = f"AWS_EC2_evt-{n:05d}_ISSUE"
    return _eventbridge("eventbridge_health", n, when, mark)


def _logs(n: int, when: str, rng: Any) -> dict[str, Any]:
    payload = json.loads(gzip.decompress(base64.b64decode(load("logs_data")["awslogs"]["data"])))
    payload["logGroup"] = f"/aws/lambda/evt-{n:05d}"
    payload["logEvents"] = payload["logEvents"][: rng.randint(1, 4)]
    data = base64.b64encode(gzip.compress(json.dumps(payload).encode())).decode()
    return {"awslogs": {"data": data}}


KINDS = [_alarm, _alarm, _alarm, _report, _report, _text, _ec2, _guardduty, _codebuild, _health, _logs, _logs]


# --------------------------------------------------------------------------- the destinations


class Destinations:
    """The receiver's replies: healthy, flaky in bursts, dying half-way."""

    def __init__(self, receiver: Receiver) -> None:
        self.receiver = receiver
        self.burst: list[Reply] = []
        self.dead = False
        receiver.responder = self.reply

    def reply(self, path: str, body: Any) -> Reply:
        if path == DYING and self.dead:
            return Reply(404, b"no_service")
        if path == FLAKY and self.burst:
            return self.burst.pop(0)
        return Reply(200, b"ok")

    def start_burst(self, rng: Any) -> int:
        size = rng.choice([1, 2, 3, 4, 6, 9, 12])
        self.burst = [Reply(500, b"oops") if rng.random() < 0.5 else Reply(429, b"", {"Retry-After": "1"})
                      for _ in range(size)]
        return size


# --------------------------------------------------------------------------- the lifetime


class Ledger:
    """What each destination received (2xx answers) and what was kept, per event token."""

    def __init__(self, receiver: Receiver, env: AlertsAws) -> None:
        self.receiver = receiver
        self.env = env
        self.seen = 0
        self.delivered: Counter[tuple[int, str]] = Counter()
        self.requests: Counter[tuple[int, str]] = Counter()
        self.kept: list[dict[str, Any]] = []
        self.kept_by: Counter[tuple[int, str]] = Counter()
        self.kept_metric = 0

    def update(self, output: str) -> None:
        with self.receiver.lock:
            fresh = self.receiver.received[self.seen:]
            self.seen = len(self.receiver.received)
        for item in fresh:
            key = (_token(item.body), NAMES[item.path])
            self.requests[key] += 1
            if 200 <= item.status < 300:
                self.delivered[key] += 1
        for item in self.env.kept():
            self.kept.append(item)
            self.kept_by[(_token(item["message"]), item["destination"])] += 1
        for line in output.splitlines():
            if '"AlertsKept"' in line and '"_aws"' in line:
                value = json.loads(line)["AlertsKept"]
                self.kept_metric += int(sum(value) if isinstance(value, list) else value)


@pytest.fixture
def served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Receiver]:
    with https_receiver(tmp_path) as (receiver, bundle):
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", bundle)
        yield receiver


class Day:
    """The simulated day: what was sent, what the destinations and the undelivered queue saw, the checks."""

    def __init__(self, served: Receiver, env: AlertsAws, faults: FaultInjector, clock: SimClock) -> None:
        self.faults = faults
        self.destinations = Destinations(served)
        self.runtime = LambdaRuntime(self.invoke, function_name="alerts")
        self.sim = Simulation(seed=SEED, clock=clock)
        self.ledger = Ledger(served, env)
        self.expected: dict[int, set[str]] = {}
        self.faulted_events: set[int] = set()
        self.counts = Counter[str]()
        self.sim.invariant("each alert reaches each live destination at most once, exactly once when done")(
            self.once)
        self.sim.invariant("what is not delivered is kept with the rendered message and the reason, and counted")(
            self.kept)
        self.sim.invariant("no destination failure becomes an on-failure record; a dead destination is no "
                           "retry storm")(self.no_storm)

    def invoke(self, event: Any, context: Any) -> Any:
        with self.faults.active():
            return handler.handler(event, context)

    # -- invariants
    def _pair(self, n: int, name: str, failed: set[int]) -> str | None:
        got, kept = self.ledger.delivered[(n, name)], self.ledger.kept_by[(n, name)]
        if name not in self.expected[n]:
            return f"evt-{n:05d} reached {name} below its min_severity" if got or kept else None
        if got + kept > 1:
            return f"evt-{n:05d} to {name}: delivered {got}x, kept {kept}x"
        if n in failed:
            return None
        if got + kept == 0:
            return f"evt-{n:05d} to {name}: neither delivered nor kept"
        if name == "slack#0" and got != 1:
            return f"evt-{n:05d}: the healthy destination got it {got}x"
        return None

    def once(self) -> list[str]:
        failed = {_token(record.request) for record in self.runtime.failures}
        found = (self._pair(n, name, failed) for n in self.expected for name in NAMES.values())
        return [problem for problem in found if problem]

    def kept(self) -> list[str]:
        problems = [f"kept without message or reason: {item}" for item in self.ledger.kept
                    if not item.get("reason") or not isinstance(item.get("message"), dict)]
        if self.ledger.kept_metric != len(self.ledger.kept):
            problems.append(f"AlertsKept metric {self.ledger.kept_metric} != {len(self.ledger.kept)} kept")
        return problems

    def no_storm(self) -> list[str]:
        problems = [f"on-failure record not caused by an injected AWS fault: {record.payload['responsePayload']}"
                    for record in self.runtime.failures if _token(record.request) not in self.faulted_events]
        for (n, name), count in self.ledger.requests.items():
            if name == "webhook#2" and self.destinations.dead and count > ATTEMPTS:
                problems.append(f"evt-{n:05d}: {count} requests to the dead destination")
            if name == "teams#1" and count > 3 * ATTEMPTS:
                problems.append(f"evt-{n:05d}: {count} requests to teams#1 (at most 3 tries x {ATTEMPTS} invocations)")
        return problems

    # -- what happens between events
    def weather(self, n: int) -> None:
        """The destinations and AWS before event ``n``: the death half-way, flaky bursts, throttling."""
        rng = self.sim.rng
        if n == EVENTS // 2:
            self.destinations.dead = True
            self.sim.note("webhook#2 is deleted: 404 from now on")
        if rng.random() < 0.12:
            self.sim.note(f"teams#1 starts a burst of {self.destinations.start_burst(rng)} failures")
            self.counts["flaky bursts"] += 1
        if rng.random() < 0.03:
            self.faults.add(Fault("dynamodb.PutItem", "ProvisionedThroughputExceededException", times=1))
            self.faulted_events.add(n)
            self.counts["table writes throttled"] += 1
        if rng.random() < 0.02:
            alerts_aws_module.clear_cache()  # a cold start reads the secret again ...
            self.faults.add(Fault("secretsmanager.GetSecretValue", "ThrottlingException", times=1))
            self.faulted_events.add(n)
            self.counts["secret reads throttled"] += 1

    def event(self, n: int, capsys: pytest.CaptureFixture[str]) -> None:
        rng = self.sim.rng
        event = rng.choice(KINDS)(n, self.sim.clock.iso(), rng)
        alerts = alerts_from_event(event, Options())
        self.expected[n] = {NAMES[path] for path, minimum in MIN_SEVERITY.items()
                            if any(at_least(alert.severity, minimum) for alert in alerts)}
        self.sim.step(f"evt-{n:05d}", lambda: (self.runtime.invoke_async(event),
                                               self.ledger.update(capsys.readouterr().out)))
        self.faults.clear()

    def summary(self, waited: list[float]) -> dict[str, Any]:
        runtime = self.runtime
        kept = Counter(item["destination"] + (" gone" if item["gone"] else " failing") for item in self.ledger.kept)
        return {**self.sim.summary(), "events": EVENTS, "simulated": "24 h", "invocations": len(runtime.invocations),
                "retried invocations": len(runtime.invocations) - EVENTS, "on-failure records": len(runtime.failures),
                "kept": dict(kept), "faults": dict(self.counts), "retry-after waited (s)": sum(waited)}


def test_a_day_of_alerts_to_three_destinations(
    served: Receiver, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    clock = SimClock(dt.datetime(2026, 11, 28, tzinfo=dt.UTC))
    waited: list[float] = []
    monkeypatch.setattr(Config, "policy", lambda self, remaining=None: delivery.Policy(
        timeout=2.0, sleep=waited.append, remaining=remaining))
    with FaultInjector(clock) as faults, alerts_aws(monkeypatch) as env:
        env.put_destinations({"destinations": [
            {"type": "slack", "url": served.url + HEALTHY},
            {"type": "teams", "url": served.url + FLAKY},
            {"type": "webhook", "url": served.url + DYING, "min_severity": MIN_SEVERITY[DYING]},
        ]})
        alerts_aws_module.clear_cache()
        day = Day(served, env, faults, clock)
        for n in range(EVENTS):
            clock.advance(dt.timedelta(days=1) / EVENTS)
            day.weather(n)
            day.event(n, capsys)
        summary = day.summary(waited)
        print(json.dumps(summary, indent=1))
        assert day.destinations.dead and summary["kept"]["webhook#2 gone"] > 0
        assert summary["kept"]["teams#1 failing"] > 0
        assert summary["retried invocations"] > 0  # the flaky destination made Lambda retry
