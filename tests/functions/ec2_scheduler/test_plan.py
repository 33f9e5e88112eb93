"""Per-resource decisions and the batch splitter, without AWS."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError
from hypothesis import given, settings
from hypothesis import strategies as st

from ec2_scheduler.aws import run_batches
from ec2_scheduler.plan import Resource, TagKeys, decide, parse_override, parse_state_tag
from ec2_scheduler.schedule import parse_schedules

SCHEDULES, BAD = parse_schedules({
    "office": {"timezone": "UTC", "periods": [{"days": "*", "start": "08:00", "stop": "18:00"}]},
    "enforced": {"timezone": "UTC", "periods": [{"days": "*", "start": "08:00", "stop": "18:00"}], "enforced": True},
})
KEYS = TagKeys("Schedule")
EVENING = datetime(2026, 11, 30, 20, 0, tzinfo=UTC)


def resource(status: str = "running", schedule: str = "office", kind: Any = "ec2", **tags: str) -> Resource:
    return Resource(kind=kind, id="i-1", region="us-east-1", status=status, tags={"Schedule": schedule, **tags})


@pytest.mark.parametrize("status", ["pending", "stopping", "shutting-down", "terminated"])
def test_transitional_ec2_states_are_skipped(status: str) -> None:
    assert decide(resource(status), SCHEDULES, BAD, KEYS, EVENING).action == "skip"


@pytest.mark.parametrize("status", ["backing-up", "starting", "modifying"])
def test_rds_states_other_than_available_or_stopped_are_skipped(status: str) -> None:
    assert decide(resource(status, kind="rds-instance"), SCHEDULES, BAD, KEYS, EVENING).action == "skip"


def test_override_stopped_until_keeps_it_stopped_inside_the_period() -> None:
    morning = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
    decision = decide(resource("stopped", ScheduleState="stopped@2026-11-29T18:00:00Z",
                               ScheduleOverride="stopped-until=2026-11-30T12:00+00:00"), SCHEDULES, BAD, KEYS, morning)
    assert decision.action == "none" and decision.desired == "stopped"
    later = datetime(2026, 11, 30, 12, 5, tzinfo=UTC)
    decision = decide(resource("stopped", ScheduleState="stopped@2026-11-29T18:00:00Z",
                               ScheduleOverride="stopped-until=2026-11-30T12:00+00:00"), SCHEDULES, BAD, KEYS, later)
    assert decision.action == "start"


def test_state_and_override_tag_formats() -> None:
    assert parse_state_tag("running@2026-11-30T07:05:00Z") is not None
    assert parse_state_tag("sleeping@2026-11-30T07:05:00Z") is None
    assert parse_state_tag("running@yesterday") is None
    assert parse_override("running-until=2026-12-01T18:00Z").until == datetime(2026, 12, 1, 18, tzinfo=UTC)
    with pytest.raises(ValueError, match=re.escape("not '<running|stopped>-until")):
        parse_override("on until friday")
    with pytest.raises(ValueError, match="not an ISO 8601 time"):
        parse_override("running-until=friday")


def test_enforced_recorded_in_sync_but_stopped_by_hand_is_started() -> None:
    morning = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
    decision = decide(resource("stopped", "enforced", ScheduleState="running@2026-11-30T08:00:00Z"),
                      SCHEDULES, BAD, KEYS, morning)
    assert decision.action == "start" and decision.reason.startswith("enforced:")


def test_empty_schedule_tag_is_a_problem() -> None:
    assert decide(resource(schedule=" "), SCHEDULES, BAD, KEYS, EVENING).action == "problem"


def _error(code: str, status: int = 400) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": code}, "ResponseMetadata": {"HTTPStatusCode": status}},
                       "StartInstances")


@settings(max_examples=40, deadline=None)
@given(total=st.integers(min_value=1, max_value=130), bad=st.sets(st.integers(min_value=0, max_value=129)))
def test_bisect_isolates_exactly_the_bad_ids(total: int, bad: set[int]) -> None:
    ids = [f"i-{n}" for n in range(total)]
    bad_ids = {f"i-{n}" for n in bad if n < total}
    calls: list[list[str]] = []

    def call(batch: list[str]) -> None:
        calls.append(batch)
        assert len(batch) <= 50
        if bad_ids & set(batch):
            raise _error("IncorrectInstanceState")

    result = run_batches(call, ids)
    assert set(result.failed) == bad_ids
    assert sorted(result.succeeded) == sorted(set(ids) - bad_ids)
    if not bad_ids:
        assert len(calls) == -(-total // 50)  # one call per batch when none fails


@pytest.mark.parametrize(("code", "status"), [("RequestLimitExceeded", 400), ("InternalError", 500),
                                              ("Whatever", 503)])
def test_transient_errors_are_raised_not_split(code: str, status: int) -> None:
    def call(batch: list[str]) -> None:
        raise _error(code, status)

    with pytest.raises(ClientError):
        run_batches(call, ["i-1", "i-2"])
