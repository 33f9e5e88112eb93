"""The lifetime simulation kit: drive a function through simulated weeks, months or years under faults.

Every lifetime test is built from the same five parts:

- ``SimClock``: simulated time. ``clock.now`` is the simulation's "now" (aware UTC); ``clock.advance()``
  moves it. With ``freeze=True`` the process clock (``datetime.now``, ``time.time``) follows it too
  (freezegun), so moto's timestamps (IAM key creation, last use, secret versions) age with the simulation.
  Event builders for the real trigger shapes: ``scheduled_event()`` (EventBridge scheduled event with
  ``time``), ``rotation_event()`` (Secrets Manager rotation step), ``cloudtrail_event()`` (EventBridge
  "AWS API Call via CloudTrail").
- ``FaultInjector``: an AWS fault injector at the botocore level. It is one ``before-call`` event handler,
  registered in botocore's built-in handlers so that every session and client created afterwards carries
  it (project code is not patched). A ``Fault`` names the operation, the error code, and optionally the
  regions, a predicate on the call's parameters, a time window of the simulated clock and a number of
  times. A faulted call raises ``botocore.exceptions.ClientError`` as AWS would after the SDK's retries.
  ``injector.calls`` records every call (service, operation, region, params) made while it is active.
  ``injector.answer("ssm.GetCalendarState", fn)`` answers an operation moto does not implement: ``fn(params)``
  returns the response (after botocore validated the parameters against the service model), a fault still
  wins over it.
- ``LambdaRuntime``: a stand-in for Lambda's invocation semantics. ``invoke_async(event)``: an
  asynchronous invocation, retried twice when the handler raises, then kept as an on-failure record
  shaped like Lambda's destination record. ``deliver_sqs(bodies)``: a queue trigger with partial batch
  responses; failed messages are redelivered until ``max_receive_count``, then kept in ``dead_letters``.
- ``Simulation``: the step loop. ``sim.step(name, action)`` runs one simulated step, then every named
  invariant; a failing invariant raises ``InvariantViolation`` naming the invariant, the step, the
  simulated time, the seed and the recent step log, so a failure replays exactly with the same seed.
- People acting between runs: ``sim.rng`` (seeded ``random.Random``) for choosing what a person does; the
  actions themselves are plain boto3 calls in the test (they go through the injector's record too, but
  are never faulted: faults apply only inside ``injector.active()`` windows the test opens around the
  function's invocations).

Lengths: ``lifetime_scale()`` is ``"short"`` in ``make test`` and ``"long"`` under ``make lifetime``
(``LIFETIME=long``). Tests choose their span from it, e.g. ``days = 14 if short else 56``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import random
import traceback
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import botocore.handlers
from botocore.awsrequest import AWSResponse

from demo.fakes import FakeContext

UTC = dt.UTC
ACCOUNT = "123456789012"


def lifetime_scale() -> str:
    """``"long"`` under ``make lifetime`` (LIFETIME=long), else ``"short"``."""
    return "long" if os.environ.get("LIFETIME", "short").lower() == "long" else "short"


def is_long() -> bool:
    return lifetime_scale() == "long"


# --------------------------------------------------------------------------- clock and event shapes


REAL_TIME_MODULES = ["botocore.credentials", "urllib3", "asyncio", "threading", "selectors", "socket",
                     "socketserver", "http.server", "concurrent.futures", "queue", "httpx", "httpcore", "anyio",
                     "requests", "_pytest", "pytest_timeout", "xdist", "execnet",
                     # not scanned either: their lazily imported models must be built with the real datetime
                     "aws_lambda_powertools", "pydantic", "pydantic_core"]


class SimClock:
    """Simulated time (aware UTC). With ``freeze=True`` the process clock follows it (freezegun).

    A frozen clock must be stopped (``stop()``); ``stop_frozen_clocks()`` stops any a test left running, and
    the test suite calls it after every test, so a frozen clock never leaks into the next test.
    """

    _frozen_clocks: list[SimClock] = []  # noqa: RUF012 - the process-wide list of running freezes

    def __init__(self, start: dt.datetime, *, freeze: bool = False) -> None:
        if start.tzinfo is None:
            raise ValueError("SimClock needs an aware datetime")
        self.now = start.astimezone(UTC)
        self._freezer: Any = None
        self._frozen: Any = None
        if freeze:
            from freezegun import freeze_time

            # Only the simulated clock is frozen: event loops, threads, sockets and HTTP clients keep real
            # time, or their timeouts would never expire.
            self._freezer = freeze_time(self.now, tick=False, ignore=REAL_TIME_MODULES)
            self._frozen = self._freezer.start()
            SimClock._frozen_clocks.append(self)

    def advance(self, delta: dt.timedelta | None = None, **kwargs: float) -> dt.datetime:
        """Move the clock forward by ``delta`` (or ``timedelta(**kwargs)``) and return the new now."""
        step = delta if delta is not None else dt.timedelta(**kwargs)
        if step < dt.timedelta(0):
            raise ValueError("time does not go backwards")
        self.set(self.now + step)
        return self.now

    def set(self, when: dt.datetime) -> None:
        self.now = when.astimezone(UTC)
        if self._frozen is not None:
            self._frozen.move_to(self.now)

    def stop(self) -> None:
        if self._freezer is not None:
            self._freezer.stop()
            self._freezer = self._frozen = None
        if self in SimClock._frozen_clocks:
            SimClock._frozen_clocks.remove(self)

    @classmethod
    def stop_frozen_clocks(cls) -> int:
        """Stop every frozen clock still running (newest first); the number stopped."""
        leaked = list(reversed(cls._frozen_clocks))
        for clock in leaked:
            clock.stop()
        return len(leaked)

    def iso(self) -> str:
        return self.now.strftime("%Y-%m-%dT%H:%M:%SZ")

    def every(self, interval: dt.timedelta, until: dt.datetime) -> Iterator[dt.datetime]:
        """Advance by ``interval`` until ``until`` (exclusive), yielding each new now."""
        while self.now + interval <= until:
            yield self.advance(interval)


def scheduled_event(when: dt.datetime, *, rule_arn: str | None = None, region: str = "us-east-1",
                    account: str = ACCOUNT) -> dict[str, Any]:
    """The event EventBridge (a scheduled rule or EventBridge Scheduler's template) sends, with ``time``."""
    return {
        "version": "0",
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"scheduled/{when.isoformat()}")),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": account,
        "time": when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [rule_arn or f"arn:aws:events:{region}:{account}:rule/opsauto-schedule"],
        "detail": {},
    }


def rotation_event(secret_id: str, token: str, step: str) -> dict[str, Any]:
    """What Secrets Manager sends to a rotation function for one step."""
    if step not in ("createSecret", "setSecret", "testSecret", "finishSecret"):
        raise ValueError(f"unknown rotation step {step!r}")
    return {"SecretId": secret_id, "ClientRequestToken": token, "Step": step, "RotationToken": str(uuid.uuid4())}


def cloudtrail_event(when: dt.datetime, event_name: str, request_parameters: dict[str, Any], *,
                     response_elements: dict[str, Any] | None = None, region: str = "us-east-1",
                     account: str = ACCOUNT, user_arn: str | None = None,
                     error_code: str | None = None) -> dict[str, Any]:
    """An EventBridge "AWS API Call via CloudTrail" event for an EC2 API call (shape as AWS sends it)."""
    ts = when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    arn = user_arn or f"arn:aws:iam::{account}:user/someone"
    detail: dict[str, Any] = {
        "eventVersion": "1.09",
        "userIdentity": {"type": "IAMUser", "principalId": "AIDAEXAMPLE", "arn": arn, "accountId": account,
                         "userName": arn.rsplit("/", 1)[-1]},
        "eventTime": ts,
        "eventSource": "ec2.amazonaws.com",
        "eventName": event_name,
        "awsRegion": region,
        "sourceIPAddress": "203.0.113.10",
        "userAgent": "aws-cli/2.17.0",
        "requestParameters": request_parameters,
        "responseElements": response_elements,
        "requestID": str(uuid.uuid4()),
        "eventID": str(uuid.uuid4()),
        "readOnly": False,
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": account,
        "eventCategory": "Management",
    }
    if error_code:
        detail["errorCode"] = error_code
        detail["errorMessage"] = "simulated"
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "AWS API Call via CloudTrail",
        "source": "aws.ec2",
        "account": account,
        "time": ts,
        "region": region,
        "resources": [],
        "detail": detail,
    }


# --------------------------------------------------------------------------- fault injection


@dataclass
class Fault:
    """A chosen operation fails with a chosen error code, where and when the fault says.

    ``operation`` is ``"<service>.<Operation>"`` (service as in ``boto3.client(service)``, e.g.
    ``"ec2.StopInstances"``) or ``"*"``; ``regions`` limits it to those regions; ``when`` is a predicate on
    the call's parameters (e.g. ``lambda p: "sg-1" in p.get("GroupId", "")``); ``start``/``end`` a window of
    the simulated clock; ``times`` how many calls fail before the fault is spent (None: unlimited).
    """

    operation: str
    code: str
    message: str = "injected fault"
    status: int = 400
    regions: Sequence[str] | None = None
    when: Callable[[dict[str, Any]], bool] | None = None
    start: dt.datetime | None = None
    end: dt.datetime | None = None
    times: int | None = None
    hits: int = 0

    def matches(self, service: str, operation: str, region: str | None, params: dict[str, Any],
                now: dt.datetime | None) -> bool:
        if self.times is not None and self.hits >= self.times:
            return False
        if self.operation != "*" and self.operation.lower() != f"{service}.{operation}".lower():
            return False
        if self.regions is not None and region not in self.regions:
            return False
        if now is not None and self.start is not None and now < self.start:
            return False
        if now is not None and self.end is not None and now >= self.end:
            return False
        return self.when is None or bool(self.when(params))


THROTTLING = {"code": "ThrottlingException", "status": 400, "message": "Rate exceeded"}
EC2_THROTTLING = {"code": "RequestLimitExceeded", "status": 503, "message": "Request limit exceeded."}
INTERNAL = {"code": "InternalError", "status": 500, "message": "We encountered an internal error."}


@dataclass(frozen=True)
class Call:
    service: str
    operation: str
    region: str | None
    params: dict[str, Any]
    at: dt.datetime | None
    fault: str | None  # the error code injected, or None when the call went through


class FaultInjector:
    """One botocore ``before-call`` handler in every client made while it is installed.

    Use as a context manager around the whole test (``with FaultInjector(clock) as faults:``); add faults
    with ``faults.add(Fault(...))`` and restrict them to the function's invocations with
    ``with faults.active(): ...`` (people acting between runs are never faulted).
    """

    _current: FaultInjector | None = None
    _registered = False

    def __init__(self, clock: SimClock | None = None) -> None:
        self.clock = clock
        self.faults: list[Fault] = []
        self.calls: list[Call] = []
        self.answers: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {}
        self._active = 0

    # -- installation
    def __enter__(self) -> FaultInjector:
        if FaultInjector._current is not None:
            raise RuntimeError("a FaultInjector is already installed")
        FaultInjector._install_hook()
        FaultInjector._current = self
        _reset_project_clients()
        return self

    def __exit__(self, *exc: object) -> None:
        FaultInjector._current = None
        _reset_project_clients()

    @classmethod
    def _install_hook(cls) -> None:
        if cls._registered:
            return
        # Sessions made after this carry the handler (moto registers itself the same way).
        botocore.handlers.BUILTIN_HANDLERS.append(("before-call", _before_call))
        cls._registered = True

    # -- faults
    def add(self, fault: Fault) -> Fault:
        self.faults.append(fault)
        return fault

    def clear(self) -> None:
        self.faults.clear()

    def answer(self, operation: str, respond: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
        """Answer ``"<service>.<Operation>"`` (one moto lacks) with ``respond(params)``, inside and outside
        ``active()`` blocks; faults on it still apply."""
        self.answers[operation.lower()] = respond

    @contextlib.contextmanager
    def active(self) -> Iterator[FaultInjector]:
        """Faults apply only inside this block (the function's invocations)."""
        self._active += 1
        try:
            yield self
        finally:
            self._active -= 1

    @contextlib.contextmanager
    def paused(self) -> Iterator[FaultInjector]:
        """No faults inside this block, even within ``active()``: a person acting while a call is in flight
        (e.g. from a ``Fault.when`` predicate that deletes the resource the function is about to change)."""
        saved, self._active = self._active, 0
        try:
            yield self
        finally:
            self._active = saved

    def count(self, operation: str, *, faulted: bool | None = None) -> int:
        """Calls of ``"<service>.<Operation>"`` recorded (optionally only the faulted or the clean ones)."""
        return sum(1 for c in self.calls if f"{c.service}.{c.operation}".lower() == operation.lower()
                   and (faulted is None or (c.fault is not None) == faulted))

    def _decide(self, service: str, operation: str, region: str | None, params: dict[str, Any]) -> Fault | None:
        now = self.clock.now if self.clock is not None else None
        chosen = None
        if self._active:
            for fault in self.faults:
                if fault.matches(service, operation, region, params, now):
                    fault.hits += 1
                    chosen = fault
                    break
        self.calls.append(Call(service, operation, region, params, now, chosen.code if chosen else None))
        return chosen


def _service_name(model: Any) -> str:
    return str(model.service_model.service_name)


def _before_call(model: Any = None, params: Any = None, request_signer: Any = None, context: Any = None,
                 **_: Any) -> tuple[AWSResponse, dict[str, Any]] | None:
    injector = FaultInjector._current
    if injector is None or model is None:
        return None
    region = getattr(request_signer, "region_name", None)
    original = context.get("opsauto_params") if isinstance(context, dict) else None
    body = params.get("body") if isinstance(params, dict) else None
    call_params = original if isinstance(original, dict) else _call_params(body, params)
    fault = injector._decide(_service_name(model), model.name, region, call_params)
    if fault is None:
        respond = injector.answers.get(f"{_service_name(model)}.{model.name}".lower())
        if respond is None:
            return None
        answered = {**respond(call_params), "ResponseMetadata": {
            "HTTPStatusCode": 200, "RequestId": str(uuid.uuid4()), "HTTPHeaders": {}}}
        return AWSResponse(url="https://answered.invalid/", status_code=200, headers={}, raw=None), answered
    response = AWSResponse(url="https://injected.invalid/", status_code=fault.status, headers={}, raw=None)
    parsed = {
        "Error": {"Code": fault.code, "Message": fault.message},
        "ResponseMetadata": {"HTTPStatusCode": fault.status, "RequestId": str(uuid.uuid4()), "HTTPHeaders": {}},
    }
    return response, parsed


def _call_params(body: Any, request_dict: Any) -> dict[str, Any]:
    """The operation's input parameters as the caller passed them (botocore keeps them in the context)."""
    if isinstance(request_dict, dict):
        context = request_dict.get("context") or {}
        original = context.get("opsauto_params")
        if isinstance(original, dict):
            return original
    if isinstance(body, dict):
        return dict(body)
    if isinstance(body, bytes | str):
        text = body.decode() if isinstance(body, bytes) else body
        with contextlib.suppress(ValueError):
            loaded = json.loads(text)
            if isinstance(loaded, dict):
                return loaded
        # query protocol (EC2, IAM, SNS...): Key=Value&Key.1=Value
        from urllib.parse import parse_qsl

        return dict(parse_qsl(text))
    return {}


def _remember_params(params: Any = None, context: Any = None, **_: Any) -> None:
    """``provide-client-params``: keep the caller's parameters, so faults can match on them as written."""
    if isinstance(context, dict) and isinstance(params, dict):
        context["opsauto_params"] = dict(params)


botocore.handlers.BUILTIN_HANDLERS.append(("provide-client-params", _remember_params))


def _reset_project_clients() -> None:
    with contextlib.suppress(ImportError):
        from shared.clients import reset_clients

        reset_clients()


# --------------------------------------------------------------------------- Lambda runtime stand-in


@dataclass
class FailureRecord:
    """What Lambda sends to an on-failure destination after the retries of an asynchronous invocation."""

    payload: dict[str, Any]

    @property
    def request(self) -> Any:
        return self.payload["requestPayload"]

    @property
    def error_type(self) -> str:
        return str(self.payload["responsePayload"]["errorType"])


@dataclass
class Invocation:
    event: Any
    attempt: int
    result: Any = None
    error: BaseException | None = None


@dataclass
class LambdaRuntime:
    """Lambda's retry semantics around a handler.

    Asynchronous invocations (EventBridge, SNS, S3 notifications, Scheduler): 1 try + ``async_retries``
    retries (Lambda's default is 2) when the handler raises, then an on-failure record in ``failures``.
    SQS event source mapping: messages whose id the handler lists in ``batchItemFailures`` (or every
    message, when it raises) come back until received ``max_receive_count`` times, then go to
    ``dead_letters``.
    """

    handler: Callable[[Any, Any], Any]
    function_name: str = "opsauto-lifetime"
    async_retries: int = 2
    max_receive_count: int = 3
    context_factory: Callable[[], Any] | None = None
    failures: list[FailureRecord] = field(default_factory=list)
    dead_letters: list[dict[str, Any]] = field(default_factory=list)
    invocations: list[Invocation] = field(default_factory=list)

    def _context(self) -> Any:
        if self.context_factory:
            return self.context_factory()
        return FakeContext(self.function_name, account=ACCOUNT, request_id=str(uuid.uuid4()))

    def invoke(self, event: Any) -> Any:
        """A synchronous invocation (no retries): the handler's result, or its exception raised."""
        record = Invocation(event, 1)
        self.invocations.append(record)
        try:
            record.result = self.handler(event, self._context())
        except Exception as exc:
            record.error = exc
            raise
        return record.result

    def invoke_async(self, event: Any) -> Invocation:
        """An asynchronous invocation with Lambda's retries; the last attempt is returned."""
        last: Invocation | None = None
        for attempt in range(1, self.async_retries + 2):
            last = Invocation(event, attempt)
            self.invocations.append(last)
            try:
                last.result = self.handler(json.loads(json.dumps(event)), self._context())
                return last
            except Exception as exc:
                last.error = exc
        assert last is not None and last.error is not None
        self.failures.append(FailureRecord(failure_record(event, last.error, self.function_name,
                                                           self.async_retries + 1)))
        return last

    def deliver_sqs(self, bodies: Sequence[str | dict[str, Any]], *, queue_arn: str | None = None,
                    batch_size: int = 10) -> list[dict[str, Any]]:
        """Deliver messages through an SQS event source mapping until each succeeds or is dead-lettered.

        Returns the messages that succeeded (their records). Redelivery order is kept; every receive
        counts towards ``max_receive_count``.
        """
        arn = queue_arn or f"arn:aws:sqs:us-east-1:{ACCOUNT}:opsauto-lifetime"
        pending = [_sqs_record(b if isinstance(b, str) else json.dumps(b), arn) for b in bodies]
        done: list[dict[str, Any]] = []
        while pending:
            batch, pending = pending[:batch_size], pending[batch_size:]
            for rec in batch:
                rec["attributes"]["ApproximateReceiveCount"] = str(
                    int(rec["attributes"]["ApproximateReceiveCount"]) + 1)
            failed_ids: set[str]
            try:
                response = self.invoke({"Records": [json.loads(json.dumps(r)) for r in batch]})
                items = (response or {}).get("batchItemFailures", []) if isinstance(response, dict) else []
                failed_ids = {i["itemIdentifier"] for i in items}
            except Exception:
                failed_ids = {r["messageId"] for r in batch}
            for rec in batch:
                if rec["messageId"] not in failed_ids:
                    done.append(rec)
                elif int(rec["attributes"]["ApproximateReceiveCount"]) >= self.max_receive_count:
                    self.dead_letters.append(rec)
                else:
                    pending.append(rec)
        return done


def failure_record(event: Any, error: BaseException, function_name: str, attempts: int) -> dict[str, Any]:
    """The record Lambda sends to an on-failure destination (its documented shape)."""
    return {
        "version": "1.0",
        "timestamp": dt.datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")[:-4] + "Z",
        "requestContext": {
            "requestId": str(uuid.uuid4()),
            "functionArn": f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:{function_name}:$LATEST",
            "condition": "RetriesExhausted",
            "approximateInvokeCount": attempts,
        },
        "requestPayload": event,
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
        "responsePayload": {
            "errorMessage": str(error),
            "errorType": type(error).__name__,
            "requestId": "",
            "stackTrace": traceback.format_exception(error)[-3:],
        },
    }


def _sqs_record(body: str, queue_arn: str) -> dict[str, Any]:
    message_id = str(uuid.uuid4())
    return {
        "messageId": message_id,
        "receiptHandle": f"AQEB{message_id}",
        "body": body,
        "attributes": {"ApproximateReceiveCount": "0", "SentTimestamp": "0", "SenderId": "AIDAEXAMPLE",
                       "ApproximateFirstReceiveTimestamp": "0"},
        "messageAttributes": {},
        "md5OfBody": "",
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": queue_arn.split(":")[3],
    }


# --------------------------------------------------------------------------- the step loop and invariants


class InvariantViolation(AssertionError):
    """An invariant failed after a step; the message says which, where and how to replay."""


@dataclass
class Simulation:
    """Runs steps and checks every named invariant after each one.

    ``invariants`` maps a name ("every tagged instance is in its desired state") to a callable that
    raises AssertionError (or returns a non-empty string / list of problems) when the invariant is broken.
    """

    seed: int
    clock: SimClock
    invariants: dict[str, Callable[[], Any]] = field(default_factory=dict)
    steps: int = 0
    checks: int = 0
    log: list[str] = field(default_factory=list)
    rng: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    def invariant(self, name: str) -> Callable[[Callable[[], Any]], Callable[[], Any]]:
        """Decorator: register ``fn`` as the invariant ``name``."""
        def register(fn: Callable[[], Any]) -> Callable[[], Any]:
            self.invariants[name] = fn
            return fn
        return register

    def note(self, text: str) -> None:
        """Add a line to the step log (what a person did, which faults are on)."""
        self.log.append(f"[{self.clock.iso()}] {text}")

    def step(self, name: str, action: Callable[[], Any] | None = None) -> Any:
        """Run one step (``action``), then check every invariant."""
        self.steps += 1
        self.note(f"step {self.steps}: {name}")
        result = action() if action is not None else None
        self.check(name)
        return result

    def check(self, step_name: str = "") -> None:
        for inv_name, fn in self.invariants.items():
            self.checks += 1
            try:
                outcome = fn()
            except AssertionError as exc:
                self._violated(inv_name, step_name, str(exc))
            else:
                if outcome:
                    self._violated(inv_name, step_name, outcome if isinstance(outcome, str)
                                   else "\n".join(map(str, outcome)))

    def _violated(self, inv_name: str, step_name: str, detail: str) -> None:
        recent = "\n".join(self.log[-15:])
        raise InvariantViolation(
            f"invariant {inv_name!r} broken after step {self.steps} ({step_name}) at {self.clock.iso()} "
            f"(seed {self.seed}; rerun with the same seed to replay)\n{detail}\nrecent steps:\n{recent}"
        )

    def summary(self) -> dict[str, Any]:
        """Figures for the closing line of a lifetime test."""
        return {"seed": self.seed, "steps": self.steps, "invariant_checks": self.checks,
                "invariants": list(self.invariants)}
