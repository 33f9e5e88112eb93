"""Schedule evaluation with injected times, and property tests over periods, midnight, DST, skip dates."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ec2_scheduler.schedule import (
    RUNNING,
    STOPPED,
    Period,
    Schedule,
    ScheduleError,
    desired_state,
    next_transition,
    parse_days,
    parse_schedule,
    parse_schedules,
)

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")


def sched(start: str | None = "08:00", stop: str | None = "18:00", days: str = "mon-fri", tz: str = "Europe/Berlin",
          **extra: object) -> Schedule:
    period: dict[str, str] = {"days": days}
    if start:
        period["start"] = start
    if stop:
        period["stop"] = stop
    return parse_schedule("s", {"timezone": tz, "periods": [period], **extra})


def local(zone: ZoneInfo, *args: int) -> datetime:
    return datetime(*args, tzinfo=zone)  # type: ignore[misc]


# ---------------------------------------------------------------- parsing


@pytest.mark.parametrize(("text", "expected"), [
    ("mon-fri", {0, 1, 2, 3, 4}),
    ("sat,sun", {5, 6}),
    ("Mon,wed-fri", {0, 2, 3, 4}),
    ("fri-mon", {4, 5, 6, 0}),
    ("*", set(range(7))),
])
def test_parse_days(text: str, expected: set[int]) -> None:
    assert parse_days(text) == expected


@pytest.mark.parametrize(("raw", "message"), [
    ({"timezone": "Mars/Olympus", "periods": [{"start": "08:00"}]}, "schedule 'x': timezone 'Mars/Olympus'"),
    ({"periods": [{"days": "mon-fry", "start": "08:00"}]}, "periods[0]: days 'mon-fry': 'fry' is not a day"),
    ({"periods": [{"start": "8:00"}]}, "periods[0]: start '8:00' is not a time HH:MM"),
    ({"periods": [{"stop": "24:00"}]}, "stop '24:00' is not a time"),
    ({"periods": [{"days": "mon"}]}, "periods[0]: a period needs a start, a stop or both"),
    ({"periods": []}, "periods must be a non-empty list"),
    ({"periods": [{"start": "08:00"}], "skip_dates": ["2026-02-30"]}, "'2026-02-30' is not a valid date"),
    ({"periods": [{"start": "08:00"}], "enforced": "yes"}, "enforced must be true or false"),
    ({"periods": [{"start": "08:00"}], "colour": "red"}, "unknown field(s) colour"),
])
def test_malformed_schedules_name_schedule_and_field(raw: dict[str, object], message: str) -> None:
    with pytest.raises(ScheduleError, match="schedule 'x'") as info:
        parse_schedule("x", raw)
    assert message in str(info.value)


def test_parse_schedules_keeps_good_ones_and_names_bad_ones() -> None:
    good, bad = parse_schedules({"ok": {"periods": [{"start": "08:00"}]}, "bad": {"timezone": "Nowhere/Land"}})
    assert list(good) == ["ok"] and list(bad) == ["bad"]


# ---------------------------------------------------------------- examples with injected times


def test_office_hours_in_berlin() -> None:
    s = sched()
    assert desired_state(s, local(BERLIN, 2026, 11, 30, 7, 59)).state == STOPPED  # Monday
    assert desired_state(s, local(BERLIN, 2026, 11, 30, 8, 0)).state == RUNNING
    assert desired_state(s, local(BERLIN, 2026, 11, 30, 17, 59)).state == RUNNING
    assert desired_state(s, local(BERLIN, 2026, 11, 30, 18, 0)).state == STOPPED
    assert desired_state(s, local(BERLIN, 2026, 12, 5, 12, 0)).state == STOPPED  # Saturday
    reason = desired_state(s, local(BERLIN, 2026, 11, 30, 9, 0)).reason
    assert reason == "schedule 's': period 1 (mon-fri 08:00-18:00) started at 08:00 Mon 2026-11-30 " \
        "(08:00 CET)"


def test_overnight_period_runs_across_midnight() -> None:
    s = sched("22:00", "06:00", days="mon-fri")
    assert desired_state(s, local(BERLIN, 2026, 11, 30, 23, 0)).state == RUNNING  # Monday night
    assert desired_state(s, local(BERLIN, 2026, 12, 1, 0, 0)).state == RUNNING  # midnight
    assert desired_state(s, local(BERLIN, 2026, 12, 1, 5, 59)).state == RUNNING
    assert desired_state(s, local(BERLIN, 2026, 12, 1, 6, 0)).state == STOPPED
    # Friday night runs into Saturday morning.
    assert desired_state(s, local(BERLIN, 2026, 12, 5, 3, 0)).state == RUNNING
    assert desired_state(s, local(BERLIN, 2026, 12, 5, 7, 0)).state == STOPPED


def test_period_ending_at_midnight() -> None:
    s = sched("18:00", "00:00", days="*")
    assert desired_state(s, local(BERLIN, 2026, 11, 30, 23, 59)).state == RUNNING
    assert desired_state(s, local(BERLIN, 2026, 12, 1, 0, 0)).state == STOPPED


def test_one_sided_periods() -> None:
    start_only = sched("07:00", None, days="mon")
    stop_only = parse_schedule("s", {"timezone": "UTC", "periods": [{"days": "fri", "stop": "20:00"}]})
    assert desired_state(start_only, local(BERLIN, 2026, 12, 3, 12, 0)).state == RUNNING  # stays on all week
    assert desired_state(start_only, local(BERLIN, 2026, 11, 30, 6, 59)).state == RUNNING  # since last Monday
    both = parse_schedule("s", {"timezone": "UTC", "periods": [{"days": "mon", "start": "07:00"},
                                                                {"days": "fri", "stop": "20:00"}]})
    assert desired_state(both, datetime(2026, 12, 5, 12, tzinfo=UTC)).state == STOPPED  # Saturday
    assert desired_state(both, datetime(2026, 12, 2, 12, tzinfo=UTC)).state == RUNNING  # Wednesday
    assert desired_state(stop_only, datetime(2026, 12, 2, 12, tzinfo=UTC)).state == STOPPED


def test_back_to_back_periods_keep_running() -> None:
    s = parse_schedule("s", {"timezone": "UTC", "periods": [{"days": "*", "start": "08:00", "stop": "12:00"},
                                                             {"days": "*", "start": "12:00", "stop": "18:00"}]})
    assert desired_state(s, datetime(2026, 12, 2, 12, 0, tzinfo=UTC)).state == RUNNING


def test_skip_date_keeps_stopped_all_day_and_until_next_start() -> None:
    s = sched(skip_dates=["2026-12-24"])
    assert desired_state(s, local(BERLIN, 2026, 12, 24, 10, 0)).state == STOPPED
    assert desired_state(s, local(BERLIN, 2026, 12, 24, 0, 0)).reason.endswith("skip date 2026-12-24 (00:00 CET)")
    assert desired_state(s, local(BERLIN, 2026, 12, 25, 7, 0)).state == STOPPED
    assert desired_state(s, local(BERLIN, 2026, 12, 25, 8, 0)).state == RUNNING
    overnight = sched("20:00", "04:00", days="*", skip_dates=["2026-12-24"])
    assert desired_state(overnight, local(BERLIN, 2026, 12, 23, 23, 0)).state == RUNNING
    assert desired_state(overnight, local(BERLIN, 2026, 12, 24, 0, 30)).state == STOPPED
    assert desired_state(overnight, local(BERLIN, 2026, 12, 24, 21, 0)).state == STOPPED


@pytest.mark.parametrize(("zone", "before", "after"), [
    (BERLIN, date(2026, 3, 27), date(2026, 3, 30)),  # spring forward Sunday 29 March
    (BERLIN, date(2026, 10, 23), date(2026, 10, 26)),  # fall back Sunday 25 October
    (NEW_YORK, date(2026, 3, 6), date(2026, 3, 9)),  # spring forward Sunday 8 March
    (NEW_YORK, date(2026, 10, 30), date(2026, 11, 2)),  # fall back Sunday 1 November
])
def test_local_times_hold_on_both_sides_of_a_dst_change(zone: ZoneInfo, before: date, after: date) -> None:
    s = sched(tz=zone.key)
    for day in (before, after):  # Friday before, Monday after
        start = datetime.combine(day, time(8, 0), tzinfo=zone)
        assert desired_state(s, start - timedelta(minutes=1)).state == STOPPED
        assert desired_state(s, start).state == RUNNING
        stop = datetime.combine(day, time(18, 0), tzinfo=zone)
        assert desired_state(s, stop - timedelta(minutes=1)).state == RUNNING
        assert desired_state(s, stop).state == STOPPED
    # The UTC instants differ by the offset change.
    offset_before = datetime.combine(before, time(8), tzinfo=zone).utcoffset()
    offset_after = datetime.combine(after, time(8), tzinfo=zone).utcoffset()
    assert offset_before != offset_after


def test_start_inside_spring_forward_gap_happens_at_the_shifted_time() -> None:
    s = sched("02:30", "10:00", days="sun")
    # 29 March 2026 02:30 does not exist in Berlin: clocks jump 02:00 -> 03:00 (01:00 UTC).
    assert desired_state(s, datetime(2026, 3, 29, 0, 59, tzinfo=UTC)).state == STOPPED
    assert desired_state(s, datetime(2026, 3, 29, 1, 30, tzinfo=UTC)).state == RUNNING  # 03:30 CEST


def test_repeated_hour_in_autumn_takes_the_first_occurrence() -> None:
    s = sched("02:30", "10:00", days="sun")
    # 25 October 2026: 02:30 happens at 00:30 UTC (CEST) and again at 01:30 UTC (CET).
    assert desired_state(s, datetime(2026, 10, 25, 0, 29, tzinfo=UTC)).state == STOPPED
    assert desired_state(s, datetime(2026, 10, 25, 0, 30, tzinfo=UTC)).state == RUNNING


def test_next_transition() -> None:
    s = sched()
    instant, state = next_transition(s, local(BERLIN, 2026, 12, 4, 19, 0)) or (None, None)  # Friday evening
    assert state == RUNNING and instant == local(BERLIN, 2026, 12, 7, 8, 0)


def test_now_must_be_aware() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        desired_state(sched(), datetime(2026, 1, 1))


def test_period_needs_a_side() -> None:
    with pytest.raises(ScheduleError):
        Period(days=frozenset({0}))


# ---------------------------------------------------------------- properties

ZONES = st.sampled_from(["Europe/Berlin", "America/New_York", "UTC", "Asia/Kolkata", "Australia/Sydney"])
HOURS = st.integers(min_value=0, max_value=23)
MINUTES = st.sampled_from([0, 15, 30, 45])
DAY_SETS = st.sets(st.integers(min_value=0, max_value=6), min_size=1)
INSTANTS = st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2028, 12, 31), timezones=st.just(UTC))
FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _days_text(days: set[int]) -> str:
    return ",".join(("mon", "tue", "wed", "thu", "fri", "sat", "sun")[d] for d in sorted(days))


def _in_gap_or_fold(moment: datetime, zone: ZoneInfo) -> bool:
    """Within 2 hours of a DST change (where wall time is not a simple function of the instant)."""
    return any(
        (moment + timedelta(hours=h)).astimezone(zone).utcoffset() != moment.astimezone(zone).utcoffset()
        for h in (-2, 2)
    )


@FAST
@given(zone=ZONES, days=DAY_SETS, h1=HOURS, m1=MINUTES, h2=HOURS, m2=MINUTES, now=INSTANTS)
def test_same_day_period_matches_the_wall_clock_rule(zone: str, days: set[int], h1: int, m1: int, h2: int,
                                                     m2: int, now: datetime) -> None:
    start, stop = sorted([time(h1, m1), time(h2, m2)])
    if start == stop:
        return
    s = parse_schedule("p", {"timezone": zone, "periods": [
        {"days": _days_text(days), "start": f"{start:%H:%M}", "stop": f"{stop:%H:%M}"}]})
    tz = ZoneInfo(zone)
    if _in_gap_or_fold(now, tz):
        return
    wall = now.astimezone(tz)
    expected = RUNNING if wall.weekday() in days and start <= wall.time() < stop else STOPPED
    assert desired_state(s, now).state == expected


@FAST
@given(zone=ZONES, days=DAY_SETS, h1=HOURS, m1=MINUTES, h2=HOURS, m2=MINUTES, now=INSTANTS)
def test_overnight_period_matches_the_wall_clock_rule(zone: str, days: set[int], h1: int, m1: int, h2: int,
                                                      m2: int, now: datetime) -> None:
    stop, start = sorted([time(h1, m1), time(h2, m2)])  # stop < start: overnight
    if start == stop:
        return
    s = parse_schedule("p", {"timezone": zone, "periods": [
        {"days": _days_text(days), "start": f"{start:%H:%M}", "stop": f"{stop:%H:%M}"}]})
    tz = ZoneInfo(zone)
    if _in_gap_or_fold(now, tz):
        return
    wall = now.astimezone(tz)
    yesterday = (wall.weekday() - 1) % 7
    running = (wall.weekday() in days and wall.time() >= start) or (yesterday in days and wall.time() < stop)
    assert desired_state(s, now).state == (RUNNING if running else STOPPED)


@FAST
@given(zone=ZONES, h1=HOURS, m1=MINUTES, now=INSTANTS, start_side=st.booleans())
def test_one_sided_period_state_changes_only_at_its_time(zone: str, h1: int, m1: int, now: datetime,
                                                         start_side: bool) -> None:
    key = "start" if start_side else "stop"
    s = parse_schedule("p", {"timezone": zone, "periods": [{"days": "*", key: f"{h1:02d}:{m1:02d}"}]})
    assert desired_state(s, now).state == (RUNNING if start_side else STOPPED)


@FAST
@given(zone=ZONES, days=DAY_SETS, now=INSTANTS, skip_offset=st.integers(min_value=-3, max_value=3))
def test_skip_dates_are_always_stopped(zone: str, days: set[int], now: datetime, skip_offset: int) -> None:
    tz = ZoneInfo(zone)
    skip = now.astimezone(tz).date() + timedelta(days=skip_offset)
    s = parse_schedule("p", {"timezone": zone, "skip_dates": [skip.isoformat()], "periods": [
        {"days": _days_text(days), "start": "08:00", "stop": "18:00"},
        {"days": "*", "start": "20:00", "stop": "02:00"}]})
    if now.astimezone(tz).date() == skip:
        assert desired_state(s, now).state == STOPPED


@FAST
@given(zone=ZONES, days=DAY_SETS, now=INSTANTS, minutes=st.integers(min_value=1, max_value=60 * 24 * 3))
def test_desired_state_only_changes_at_a_transition(zone: str, days: set[int], now: datetime, minutes: int) -> None:
    s = parse_schedule("p", {"timezone": zone, "periods": [{"days": _days_text(days), "start": "08:00",
                                                            "stop": "18:00"}]})
    first = desired_state(s, now)
    later = desired_state(s, now + timedelta(minutes=minutes))
    upcoming = next_transition(s, now)
    if upcoming is None or upcoming[0] > now + timedelta(minutes=minutes):
        assert later.state == first.state
    else:
        assert first.state != upcoming[1]


@FAST
@given(days=DAY_SETS)
def test_days_label_round_trips(days: set[int]) -> None:
    from ec2_scheduler.schedule import days_label

    assert parse_days(days_label(frozenset(days))) == days


DAY_TOKENS = st.sampled_from(["mon", "tue", "wed", "thu", "fri", "sat", "sun", "fry", "-", ",", "*", " ", "Mon"])
TIMES = st.sampled_from(["08:00", "8:00", "23:59", "24:00", "00:00", "12:60", "07:30", "", "noon"])


@settings(max_examples=80, deadline=None)
@given(days=st.lists(DAY_TOKENS, min_size=1, max_size=5).map("".join), start=TIMES, tz=st.sampled_from(
    ["Europe/Berlin", "America/New_York", "UTC", "Mars/Olympus", "Europe/Berlni", ""]))
def test_synth_validation_and_function_validation_agree(days: str, start: str, tz: str) -> None:
    """A schedule the settings model accepts, the function accepts too, and the other way round."""
    from pydantic import ValidationError

    from stacks.settings.ec2_scheduler import ScheduleSettings

    raw = {"timezone": tz, "periods": [{"days": days, "start": start}]}
    try:
        ScheduleSettings.model_validate(raw)
        synth_ok = True
    except ValidationError:
        synth_ok = False
    try:
        parse_schedule("s", raw)
        function_ok = True
    except ScheduleError:
        function_ok = False
    assert synth_ok == function_ok, (raw, synth_ok, function_ok)


# ---------------------------------------------------------------- periods add up, DST gaps


def test_periods_add_up_a_resource_runs_while_any_period_says_so() -> None:
    s = parse_schedule("s", {"timezone": "Europe/Berlin", "periods": [
        {"days": "mon-fri", "start": "07:00", "stop": "19:00"}, {"days": "*", "start": "09:00", "stop": "17:00"}]})
    wednesday = date(2026, 12, 2)
    assert desired_state(s, datetime.combine(wednesday, time(17, 30), tzinfo=BERLIN)).state == RUNNING
    assert desired_state(s, datetime.combine(wednesday, time(19, 0), tzinfo=BERLIN)).state == STOPPED
    saturday = date(2026, 12, 5)
    assert desired_state(s, datetime.combine(saturday, time(8, 0), tzinfo=BERLIN)).state == STOPPED
    assert desired_state(s, datetime.combine(saturday, time(9, 0), tzinfo=BERLIN)).state == RUNNING
    # The core period's stop inside the long period is no transition: since stays at 07:00.
    since = desired_state(s, datetime.combine(wednesday, time(17, 30), tzinfo=BERLIN)).since
    assert since == datetime.combine(wednesday, time(7, 0), tzinfo=BERLIN)


def test_daily_period_starting_in_the_spring_forward_gap_runs_only_its_hours() -> None:
    s = sched("02:30", "03:15", days="*")
    # 29 March 2026: Berlin jumps 02:00 CET -> 03:00 CEST at 01:00 UTC; 02:30 does not exist.
    assert desired_state(s, datetime(2026, 3, 29, 1, 0, tzinfo=UTC)).state == RUNNING  # 03:00 CEST
    assert desired_state(s, datetime(2026, 3, 29, 1, 15, tzinfo=UTC)).state == STOPPED  # 03:15 CEST
    assert desired_state(s, datetime(2026, 3, 29, 12, 0, tzinfo=UTC)).state == STOPPED
    assert desired_state(s, datetime(2026, 3, 30, 0, 30, tzinfo=UTC)).state == RUNNING  # 02:30 CEST next day


def test_every_stop_of_a_stop_only_schedule_is_a_new_transition() -> None:
    s = sched(None, "20:00", days="*")
    monday = desired_state(s, datetime(2026, 11, 30, 21, 0, tzinfo=UTC))
    tuesday = desired_state(s, datetime(2026, 12, 1, 21, 0, tzinfo=UTC))
    assert monday.state == tuesday.state == STOPPED
    assert tuesday.since - monday.since == timedelta(days=1)
