"""post_deploy_checks lifetime: CodePipeline jobs and CodeDeploy hooks against hostile endpoints.

A run is a stream of deployments (40 in ``make test``, 200 under ``make lifetime``): CodePipeline Lambda
invoke jobs and CodeDeploy lifecycle hooks whose checks point at real endpoints on 127.0.0.1 that send
headers then the body late, trickle the body or the headers a byte at a time, redirect in a loop, reset the
connection (before or in the middle of the body), close before the announced length, send a bad gzip
stream, broken chunked encoding or an unknown charset, or sit behind a host name that resolves slowly.
Between deployments people flip CloudWatch alarms (moto). Faults: DescribeAlarms throttled (injector),
PutJob*Result / PutLifecycleEventHookExecutionStatus throttled once (Stubber), after which Lambda's async
retry (one, as the stack configures) runs the job again; some jobs carry malformed parameters, and some
get less time than their checks' worst case.

moto has no PutJob*Result or PutLifecycleEventHookExecutionStatus, so botocore's Stubber answers them on
the function's own clients and checks every call against the real service model; each job's expected
verdict comes from what its endpoints do.

Invariants after every deployment:
- every job and every hook gets exactly one accepted result, of the verdict its endpoints call for;
- every invocation answers and returns before the deadline its (counting-down) Lambda context gives it
  (wall time measured here: a correctness bound, not a performance claim);
- nothing is left to Lambda's on-failure destination;
- no user:password or query token of a check URL reaches the logs.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber
from moto import mock_aws

from post_deploy_checks import handler
from shared.clients import client
from tests.conftest import load_event
from tests.functions.post_deploy_checks.conftest import token_key_secret
from tests.functions.post_deploy_checks.hostile import SLOW_DNS_SUFFIX, HostileServer, slow_resolver
from tests.lifetime.kit import (
    THROTTLING,
    FakeContext,
    Fault,
    FaultInjector,
    LambdaRuntime,
    SimClock,
    Simulation,
    is_long,
)

SEED = 1313
START = dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.UTC)
TIMEOUT = 0.4  # each job's timeout_seconds: hostile endpoints cost this much per attempt
INTERVAL = 0.1
ALARMS = ("shop-5xx", "shop-latency", "shop-errors")
HOSTILE = ("late-headers", "late-body", "trickle", "trickle-headers", "redirect-loop", "reset", "reset-mid-body",
           "short-body", "bad-gzip", "bad-chunked", "slow-dns")
SECRETS = ("pa55-w0rd-", "tok-")  # prefixes of the credentials put into check URLs


@dataclass
class Deployment:
    kind: str  # "job" | "hook"
    ident: str
    config: dict[str, Any] | str
    expect_pass: bool
    expect_type: str = ""  # failure type for jobs: JobFailed | ConfigurationError
    deadline_ms: int = 0
    throttle_report: bool = False
    throttle_alarms: bool = False


@dataclass
class Answer:
    operation: str
    params: dict[str, Any]
    accepted: bool
    at: float


@dataclass
class Span:
    ident: str
    context: FakeContext
    started: float
    ended: float = 0.0


@dataclass
class World:
    server: HostileServer
    deployments: list[Deployment] = field(default_factory=list)
    answers: list[Answer] = field(default_factory=list)
    spans: list[Span] = field(default_factory=list)
    alarm_states: dict[str, str] = field(default_factory=dict)
    logs: io.StringIO = field(default_factory=io.StringIO)


def _check(world: World, sim: Simulation, index: int, number: int) -> tuple[dict[str, Any], bool]:
    """One check of a deployment: its JSON and whether it should pass."""
    roll = sim.rng.random()
    body_check = sim.rng.random() < 0.5
    spec: dict[str, Any] = {"name": f"c{index}"}
    if roll < 0.7:
        behaviour, passes = "ok", True
    elif roll < 0.78:
        behaviour, passes = "bad-charset", not body_check
    else:
        behaviour, passes = sim.rng.choice(HOSTILE), False
    host = f"svc{number}{SLOW_DNS_SUFFIX}" if behaviour == "slow-dns" else "127.0.0.1"
    url = world.server.url("ok" if behaviour == "slow-dns" else behaviour, host=host,
                           query=f"api_token=tok-{number}-{index}&v=2")
    if sim.rng.random() < 0.3:
        url = url.replace("http://", f"http://deploy:pa55-w0rd-{number}@")
    spec["url"] = url
    if body_check:
        spec["body_contains"] = "ok"
    return spec, passes


def _plan(world: World, sim: Simulation, number: int) -> Deployment:
    rng = sim.rng
    kind = "hook" if rng.random() < 0.25 else "job"
    ident = f"job-{number:04d}-0000-0000-000000000000" if kind == "job" else f"d-{number:09d}"
    checks, passes = [], True
    for index in range(rng.randint(0 if kind == "job" else 1, 4)):
        spec, ok = _check(world, sim, index, number)
        checks.append(spec)
        passes = passes and ok
    alarms = rng.sample(ALARMS, rng.randint(0, 2)) if checks else [rng.choice(ALARMS)]
    throttle_alarms = bool(alarms) and rng.random() < 0.1
    passes = passes and not throttle_alarms and all(world.alarm_states[a] != "ALARM" for a in alarms)
    attempts = rng.choice((1, 2))
    config: dict[str, Any] = {"checks": checks, "alarms": alarms, "attempts": attempts,
                              "interval_seconds": INTERVAL, "timeout_seconds": TIMEOUT}
    worst = attempts * TIMEOUT + (attempts - 1) * INTERVAL if checks else 0.0
    # Enough for the worst case plus the report margin (a fifth of the remaining time), and slack for a
    # loaded test machine (the bound is checked against this deadline, whatever the machine does).
    deadline_ms = int((worst / 0.8 + rng.uniform(1.5, 3.0)) * 1000)
    deployment = Deployment(kind, ident, config, passes, "" if passes else "JobFailed", deadline_ms,
                            throttle_report=rng.random() < 0.08, throttle_alarms=throttle_alarms)
    if kind == "job" and rng.random() < 0.05:  # a malformed action configuration
        deployment.config = json.dumps(config)[:-3]
        deployment.expect_pass, deployment.expect_type = False, "ConfigurationError"
    elif checks and rng.random() < 0.05:  # too little time for the checks' worst case
        deployment.deadline_ms = int(worst * 0.5 * 1000) + 1
        deployment.expect_pass, deployment.expect_type = False, "ConfigurationError"
    return deployment


def _job_event(deployment: Deployment) -> dict[str, Any]:
    event = load_event("post_deploy_checks/codepipeline_job.json")
    job = event["CodePipeline.job"]
    job["id"] = deployment.ident
    config = deployment.config
    job["data"]["actionConfiguration"]["configuration"]["UserParameters"] = (
        config if isinstance(config, str) else json.dumps(config))
    return event


def _hook_event(deployment: Deployment) -> dict[str, Any]:
    event = load_event("post_deploy_checks/codedeploy_hook.json")
    event["DeploymentId"] = deployment.ident
    event["LifecycleEventHookExecutionId"] = f"hook-{deployment.ident}"
    return event


def _expect(deployment: Deployment, pipeline: Stubber, codedeploy: Stubber) -> None:
    """Queue the one answer the deployment must get (after a throttled first try, when planned)."""
    if deployment.kind == "hook":
        status = "Succeeded" if deployment.expect_pass else "Failed"
        params = {"deploymentId": deployment.ident, "lifecycleEventHookExecutionId": f"hook-{deployment.ident}",
                  "status": status}
        if deployment.throttle_report:
            codedeploy.add_client_error("put_lifecycle_event_hook_execution_status", "ThrottlingException",
                                        http_status_code=400, expected_params=params)
        codedeploy.add_response("put_lifecycle_event_hook_execution_status", {"lifecycleEventHookExecutionId":
                                                                              params["lifecycleEventHookExecutionId"]},
                                params)
        return
    if deployment.expect_pass:
        operation = "put_job_success_result"
        params = {"jobId": deployment.ident, "executionDetails": ANY, "outputVariables": ANY}
    else:
        operation = "put_job_failure_result"
        params = {"jobId": deployment.ident, "failureDetails": ANY}
    if deployment.throttle_report:
        pipeline.add_client_error(operation, "ThrottlingException", http_status_code=400, expected_params=params)
    pipeline.add_response(operation, {}, params)


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    for var in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    for name, value in {"CHECKS": "", "HEADER_SECRETS": "", "SECRETS_MAX_AGE_SECONDS": "300"}.items():
        monkeypatch.setenv(name, value)
    slow_resolver(monkeypatch, resolve_delay=2.0)
    from shared.observability import logger

    with HostileServer(stall=30, trickle_gap=0.05, max_stall=20) as server:
        state = World(server)
        stream = logging.StreamHandler(state.logs)
        stream.setFormatter(logger.registered_formatter)
        logger.addHandler(stream)
        try:
            yield state
        finally:
            logger.removeHandler(stream)


def test_post_deploy_checks_lifetime(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    deployments = 200 if is_long() else 40
    clock = SimClock(START)
    sim = Simulation(seed=SEED, clock=clock)
    wall_started = time.monotonic()
    with mock_aws(), FaultInjector(clock) as faults:
        topic = boto3.client("sns", region_name="us-east-1").create_topic(Name="opsauto-ops")["TopicArn"]
        monkeypatch.setenv("NOTIFY_TOPIC_ARN", topic)
        monkeypatch.setenv("TOKEN_KEY_SECRET_ARN", token_key_secret())
        cloudwatch = boto3.client("cloudwatch", region_name="us-east-1")
        for name in ALARMS:
            cloudwatch.put_metric_alarm(AlarmName=name, MetricName=name, Namespace="Shop", Statistic="Sum",
                                        Period=60, EvaluationPeriods=1, Threshold=1,
                                        ComparisonOperator="GreaterThanThreshold")
            world.alarm_states[name] = "INSUFFICIENT_DATA"
        pipeline, codedeploy = Stubber(client("codepipeline")), Stubber(client("codedeploy"))
        for stubbed in (client("codepipeline"), client("codedeploy")):
            stubbed.meta.events.register("after-call", _recorder(world))

        def timed(event: Any, context: FakeContext) -> Any:
            span = Span(world.deployments[-1].ident, context, time.monotonic())
            world.spans.append(span)
            try:
                return handler.handler(event, context)  # type: ignore[arg-type]
            finally:
                span.ended = time.monotonic()

        contexts: list[FakeContext] = []

        def new_context() -> FakeContext:
            contexts.append(FakeContext("opsauto-post-deploy-checks", remaining_ms=world.deployments[-1].deadline_ms,
                                        countdown=True))
            return contexts[-1]

        runtime = LambdaRuntime(timed, function_name="opsauto-post-deploy-checks", async_retries=1,
                                context_factory=new_context)
        _invariants(sim, world, runtime)

        with pipeline, codedeploy:
            for number in range(deployments):
                clock.advance(minutes=sim.rng.randint(5, 90))
                if sim.rng.random() < 0.3:  # someone's alarm changes state between deployments
                    name = sim.rng.choice(ALARMS)
                    state = sim.rng.choice(("OK", "ALARM", "OK"))
                    cloudwatch.set_alarm_state(AlarmName=name, StateValue=state, StateReason="lifetime")
                    world.alarm_states[name] = state
                    sim.note(f"alarm {name} -> {state}")
                deployment = _plan(world, sim, number)
                world.deployments.append(deployment)
                _expect(deployment, pipeline, codedeploy)
                faults.clear()
                if deployment.throttle_alarms:
                    faults.add(Fault("cloudwatch.DescribeAlarms", **THROTTLING, times=1))
                if deployment.kind == "hook":
                    config = deployment.config
                    monkeypatch.setenv("CHECKS", config if isinstance(config, str) else json.dumps(config))
                    event = _hook_event(deployment)
                else:
                    monkeypatch.setenv("CHECKS", "")
                    event = _job_event(deployment)

                def deliver(event: dict[str, Any] = event) -> None:
                    with faults.active():
                        runtime.invoke_async(event)

                sim.step(f"{deployment.kind} {deployment.ident} (pass expected: {deployment.expect_pass})", deliver)
            pipeline.assert_no_pending_responses()
            codedeploy.assert_no_pending_responses()

    wall = time.monotonic() - wall_started
    figures = sim.summary() | {"deployments": deployments, "wall_seconds": round(wall, 1),
                               "jobs": sum(d.kind == "job" for d in world.deployments),
                               "hooks": sum(d.kind == "hook" for d in world.deployments),
                               "expected_pass": sum(d.expect_pass for d in world.deployments),
                               "report_throttled": sum(d.throttle_report for d in world.deployments),
                               "invocations": len(world.spans)}
    print(f"post_deploy_checks lifetime: {figures}")
    assert sim.steps == deployments and figures["expected_pass"] > 0
    assert figures["expected_pass"] < deployments  # the run saw failures as well as passes


def _recorder(world: World) -> Any:
    def record(http_response: Any = None, model: Any = None, context: Any = None, params: Any = None,
               **_: Any) -> None:
        call = context.get("opsauto_params") if isinstance(context, dict) else None
        if call is None and isinstance(params, dict):
            body = params.get("body")
            call = json.loads(body) if isinstance(body, bytes | str) and body else {}
        status = getattr(http_response, "status_code", 500)
        world.answers.append(Answer(model.name, dict(call or {}), status < 300, time.monotonic()))
    return record


def _ident(answer: Answer) -> str:
    return str(answer.params.get("jobId") or answer.params.get("deploymentId"))


def _invariants(sim: Simulation, world: World, runtime: LambdaRuntime) -> None:
    sim.invariants.update({
        "every job and hook has exactly one accepted result, of the verdict its endpoints call for":
            lambda: _exactly_one(world),
        "every invocation answers and returns before its deadline": lambda: _before_deadline(world),
        "nothing is left to Lambda's on-failure destination":
            lambda: [f"{record.request}: {record.error_type}" for record in runtime.failures],
        "no URL credential or query token reaches the logs":
            lambda: [f"{prefix}... logged" for prefix in SECRETS if prefix in world.logs.getvalue()],
    })


def _exactly_one(world: World) -> list[str]:
    problems = []
    accepted: dict[str, list[Answer]] = {}
    for answer in world.answers:
        if answer.accepted:
            accepted.setdefault(_ident(answer), []).append(answer)
    for deployment in world.deployments:
        got = accepted.pop(deployment.ident, [])
        if len(got) != 1:
            problems.append(f"{deployment.ident}: {len(got)} accepted results")
            continue
        problems.extend(_verdict_problems(deployment, got[0]))
    problems.extend(f"{ident}: a result for no deployment" for ident in accepted)
    return problems


def _before_deadline(world: World) -> list[str]:
    problems = [f"{span.ident}: returned {span.ended - span.context.deadline:.2f} s after its deadline"
                for span in world.spans if span.ended > span.context.deadline]
    for answer in world.answers:
        span = next((s for s in reversed(world.spans) if s.ident == _ident(answer) and s.started <= answer.at), None)
        if span is None or answer.at > span.context.deadline:
            problems.append(f"{_ident(answer)}: {answer.operation} after the invocation's deadline")
    return problems


def _verdict_problems(deployment: Deployment, answer: Answer) -> list[str]:
    if deployment.kind == "hook":
        want = "Succeeded" if deployment.expect_pass else "Failed"
        got = answer.params.get("status")
        return [] if got == want else [f"{deployment.ident}: hook {got}, expected {want}"]
    if deployment.expect_pass:
        return [] if answer.operation == "PutJobSuccessResult" else [f"{deployment.ident}: failed, expected pass"]
    if answer.operation != "PutJobFailureResult":
        return [f"{deployment.ident}: {answer.operation}, expected a failure"]
    got_type = answer.params.get("failureDetails", {}).get("type")
    if got_type != deployment.expect_type:
        message = answer.params.get("failureDetails", {}).get("message", "")[:300]
        return [f"{deployment.ident}: failure type {got_type}, expected {deployment.expect_type}: {message}"]
    return []
