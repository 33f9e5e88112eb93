"""Rotations and sweeps over weeks: the previous key is retired in both modes, deletions wait for the grace,
the sweep reads AWSCURRENT from the secret. The clock is the lifetime kit's (moto's key dates follow it)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from key_rotation.rotation import TAG_CURRENT_KEY, TAG_CURRENT_SINCE
from shared.timeutil import iso
from tests.functions.key_rotation.test_rotation import run_steps
from tests.functions.key_rotation.test_sweep import sweep
from tests.lifetime.kit import SimClock

T0 = datetime(2026, 3, 2, 4, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> Iterator[SimClock]:
    sim = SimClock(T0, freeze=True)
    yield sim
    sim.stop()


def _rotate(aws: Any, lambda_context: Any, secret: str) -> list[dict[str, Any]]:
    return run_steps(lambda_context, secret, aws.start_rotation(secret))


def _days_of_sweeps(lambda_context: Any, clock: SimClock, days: int) -> None:
    for _ in range(days):
        clock.advance(days=1)
        sweep(lambda_context, clock.now)


@pytest.mark.parametrize("mode", ["report", "enforce"])
def test_rotation_keeps_working_in_both_modes(aws: Any, lambda_context: Any, clock: SimClock,
                                              monkeypatch: pytest.MonkeyPatch, mode: str) -> None:
    """Every rotation retires the key before last (the daily sweep deactivates it after the grace, in either
    mode: it belongs to the rotation), so the third rotation and every later one find room for a new key."""
    monkeypatch.setenv("MODE", mode)
    aws.user("ci")
    secret = aws.managed_secret("ci")
    monkeypatch.setenv("MANAGED_SECRETS", json.dumps({"ci": secret}))
    current = []
    for _ in range(4):
        results = _rotate(aws, lambda_context, secret)
        assert results[-1]["outcome"] == "finished"
        current.append(aws.secret_value(secret)["AccessKeyId"])
        _days_of_sweeps(lambda_context, clock, 30)
    assert len(set(current)) == 4
    assert aws.keys("ci") == {current[-2]: "Inactive", current[-1]: "Active"}


def test_key_deactivated_by_a_sweep_waits_grace_days_before_deletion(aws: Any, lambda_context: Any,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """An idle key far past every threshold: deactivated on day 0, deleted only once grace_days have passed
    since the sweep deactivated it (not by the next day's sweep)."""
    monkeypatch.setenv("MODE", "enforce")
    (key,) = aws.user("old-batch", keys=1)
    aws.set_key("old-batch", key, created=T0 - timedelta(days=200))

    sweep(lambda_context, T0)
    assert aws.keys("old-batch") == {key: "Inactive"}
    for day in range(1, 7):
        sweep(lambda_context, T0 + timedelta(days=day))
        assert aws.keys("old-batch") == {key: "Inactive"}, f"deleted {day} day(s) after it was deactivated"
    sweep(lambda_context, T0 + timedelta(days=7))
    assert aws.keys("old-batch") == {}
    tags = {t["Key"] for t in aws.iam.list_user_tags(UserName="old-batch")["Tags"]}
    assert not any(key in t for t in tags)  # the record goes with the key


@pytest.mark.parametrize("mode", ["report", "enforce"])
def test_sweep_takes_awscurrent_from_the_secret_not_from_stale_tags(aws: Any, lambda_context: Any, clock: SimClock,
                                                                    monkeypatch: pytest.MonkeyPatch,
                                                                    mode: str) -> None:
    monkeypatch.setenv("MODE", mode)
    aws.user("ci")
    secret = aws.managed_secret("ci")
    monkeypatch.setenv("MANAGED_SECRETS", json.dumps({"ci": secret}))
    _rotate(aws, lambda_context, secret)
    first = aws.secret_value(secret)["AccessKeyId"]
    clock.advance(days=30)
    _rotate(aws, lambda_context, secret)
    current = aws.secret_value(secret)["AccessKeyId"]
    # The record on the secret says the first key is current, since a moment after the real current key was last
    # used (a tag write lost, a restore, a hand edit of the tags).
    clock.advance(hours=1)
    aws.sm.tag_resource(SecretId=secret, Tags=[{"Key": TAG_CURRENT_KEY, "Value": first},
                                               {"Key": TAG_CURRENT_SINCE, "Value": iso(clock.now)}])
    _days_of_sweeps(lambda_context, clock, 20)
    assert aws.keys("ci")[current] == "Active"
