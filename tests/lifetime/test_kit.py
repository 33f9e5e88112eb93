"""The lifetime kit itself: faults reach real boto3 calls against moto, Lambda's retry semantics, invariants."""

from __future__ import annotations

import datetime as dt

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from tests.lifetime.kit import (
    Fault,
    FaultInjector,
    InvariantViolation,
    LambdaRuntime,
    SimClock,
    Simulation,
    cloudtrail_event,
    scheduled_event,
)

START = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)


@mock_aws
def test_fault_hits_only_the_chosen_operation_region_resource_and_window() -> None:
    clock = SimClock(START)
    with FaultInjector(clock) as faults:
        east = boto3.client("ec2", region_name="us-east-1")
        west = boto3.client("ec2", region_name="eu-west-1")
        faults.add(Fault("ec2.DescribeInstances", "UnauthorizedOperation", regions=["eu-west-1"],
                         end=START + dt.timedelta(days=1)))
        faults.add(Fault("ec2.DeleteSecurityGroup", "InvalidGroup.NotFound",
                         when=lambda p: p.get("GroupId") == "sg-doomed"))
        with faults.active():
            east.describe_instances()
            with pytest.raises(ClientError) as err:
                west.describe_instances()
            assert err.value.response["Error"]["Code"] == "UnauthorizedOperation"
            with pytest.raises(ClientError) as err:
                west.delete_security_group(GroupId="sg-doomed")
            assert err.value.response["Error"]["Code"] == "InvalidGroup.NotFound"
        west.describe_instances()  # outside active(): people are never faulted
        clock.advance(days=1)
        with faults.active():
            west.describe_instances()  # the window is over
    assert faults.count("ec2.DescribeInstances", faulted=True) == 1
    assert faults.count("ec2.DescribeInstances", faulted=False) == 3


@mock_aws
def test_paused_lets_a_person_act_while_a_faulted_call_is_in_flight() -> None:
    with FaultInjector() as faults:
        sns = boto3.client("sns", region_name="us-east-1")
        faults.add(Fault("sns.ListTopics", "Throttling"))
        with faults.active():
            with faults.paused():
                sns.list_topics()
            with pytest.raises(ClientError):
                sns.list_topics()
    assert faults.count("sns.ListTopics", faulted=True) == 1


@mock_aws
def test_fault_with_times_is_a_burst() -> None:
    with FaultInjector() as faults:
        sns = boto3.client("sns", region_name="us-east-1")
        faults.add(Fault("sns.ListTopics", "Throttling", times=2))
        with faults.active():
            for _ in range(2):
                with pytest.raises(ClientError):
                    sns.list_topics()
            sns.list_topics()


def test_async_invocation_is_retried_twice_then_kept_as_an_on_failure_record() -> None:
    seen: list[int] = []

    def handler(event: dict, context: object) -> None:
        seen.append(event["n"])
        raise RuntimeError("boom")

    runtime = LambdaRuntime(handler)
    last = runtime.invoke_async({"n": 1})
    assert seen == [1, 1, 1] and last.attempt == 3
    [record] = runtime.failures
    assert record.request == {"n": 1}
    assert record.payload["requestContext"]["condition"] == "RetriesExhausted"
    assert record.payload["requestContext"]["approximateInvokeCount"] == 3
    assert record.error_type == "RuntimeError"


def test_sqs_messages_are_redelivered_until_max_receive_count_then_dead_lettered() -> None:
    attempts: dict[str, int] = {}

    def handler(event: dict, context: object) -> dict:
        failures = []
        for rec in event["Records"]:
            attempts[rec["body"]] = attempts.get(rec["body"], 0) + 1
            if rec["body"] == "bad" or (rec["body"] == "flaky" and attempts["flaky"] < 2):
                failures.append({"itemIdentifier": rec["messageId"]})
        return {"batchItemFailures": failures}

    runtime = LambdaRuntime(handler, max_receive_count=3)
    done = runtime.deliver_sqs(["good", "flaky", "bad"])
    assert sorted(r["body"] for r in done) == ["flaky", "good"]
    assert [r["body"] for r in runtime.dead_letters] == ["bad"]
    assert attempts == {"good": 1, "flaky": 2, "bad": 3}


def test_a_broken_invariant_names_itself_the_step_the_time_and_the_seed() -> None:
    sim = Simulation(seed=7, clock=SimClock(START))
    state = {"open": 0}
    sim.invariants["no rule stays open"] = lambda: [f"{state['open']} open"] if state["open"] else []
    sim.step("quiet hour")
    with pytest.raises(InvariantViolation) as err:
        sim.step("someone opens a port", lambda: state.update(open=1))
    text = str(err.value)
    assert "'no rule stays open'" in text and "step 2 (someone opens a port)" in text
    assert "seed 7" in text and "2026-03-01T12:00:00Z" in text and "1 open" in text


def test_frozen_clock_moves_the_process_clock_with_the_simulation() -> None:
    clock = SimClock(START, freeze=True)
    try:
        assert dt.datetime.now(dt.UTC) == START
        clock.advance(days=400)
        assert dt.datetime.now(dt.UTC) == START + dt.timedelta(days=400)
    finally:
        clock.stop()


def test_event_shapes() -> None:
    event = scheduled_event(START)
    assert event["time"] == "2026-03-01T12:00:00Z" and event["detail-type"] == "Scheduled Event"
    ct = cloudtrail_event(START, "AuthorizeSecurityGroupIngress", {"groupId": "sg-1"})
    assert ct["detail"]["eventName"] == "AuthorizeSecurityGroupIngress"
    assert ct["detail-type"] == "AWS API Call via CloudTrail"


def test_fake_context_counts_down_when_asked() -> None:
    from tests.lifetime.kit import FakeContext

    fixed = FakeContext(remaining_ms=5_000)
    assert fixed.get_remaining_time_in_millis() == 5_000
    counting = FakeContext(remaining_ms=5_000, countdown=True)
    first = counting.get_remaining_time_in_millis()
    counting.deadline -= 2.0  # two seconds of the invocation have passed
    later = counting.get_remaining_time_in_millis()
    assert first <= 5_000 and later <= first - 2_000
    counting.deadline -= 10.0
    assert counting.get_remaining_time_in_millis() == 0


@mock_aws
def test_answer_stands_in_for_an_operation_moto_lacks_and_faults_still_win() -> None:
    clock = SimClock(START)
    with FaultInjector(clock) as faults:
        faults.answer("ssm.GetCalendarState", lambda params: {
            "State": "CLOSED" if params["AtTime"] < "2026-03-02" else "OPEN", "AtTime": params["AtTime"]})
        ssm = boto3.client("ssm", region_name="us-east-1")
        assert ssm.get_calendar_state(CalendarNames=["freeze"], AtTime="2026-03-01T12:00:00Z")["State"] == "CLOSED"
        assert ssm.get_calendar_state(CalendarNames=["freeze"], AtTime="2026-03-03T12:00:00Z")["State"] == "OPEN"
        with pytest.raises(Exception, match="CalendarNames"):  # botocore still validates the parameters
            ssm.get_calendar_state(AtTime="2026-03-01T12:00:00Z")  # type: ignore[call-arg]
        faults.add(Fault("ssm.GetCalendarState", "ThrottlingException"))
        with faults.active(), pytest.raises(ClientError, match="ThrottlingException"):
            ssm.get_calendar_state(CalendarNames=["freeze"])
        assert faults.count("ssm.GetCalendarState") == 3
