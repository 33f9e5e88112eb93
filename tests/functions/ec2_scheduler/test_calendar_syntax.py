"""The calendar syntax of periods and skip dates, calendars' contributions and maintenance windows: pure.

Each property is checked against a plain computation written here (counting days), not the parser's.
"""

from __future__ import annotations

import calendar as stdlib_calendar
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ec2_scheduler.calendars import CalendarError, closed_intervals, ics_skip_dates
from ec2_scheduler.schedule import (
    DAY_NAMES,
    LAST,
    MONTH_NAMES,
    RUNNING,
    STOPPED,
    Period,
    ScheduleError,
    desired_state,
    maintenance_state,
    parse_day_spec,
    parse_maintenance_window,
    parse_monthdays,
    parse_months,
    parse_schedule,
    timeline,
)

BERLIN = ZoneInfo("Europe/Berlin")
dates = st.dates(min_value=date(2024, 1, 1), max_value=date(2032, 12, 31))


def _nth_by_counting(day: date) -> int:
    return sum(1 for d in range(1, day.day + 1) if date(day.year, day.month, d).weekday() == day.weekday())


def _is_last_weekday_by_counting(day: date) -> bool:
    days_in_month = stdlib_calendar.monthrange(day.year, day.month)[1]
    return all(date(day.year, day.month, d).weekday() != day.weekday() for d in range(day.day + 1, days_in_month + 1))


def _one_period(**fields: str) -> Period:
    raw = {"timezone": "UTC", "periods": [{**fields, "start": "08:00", "stop": "18:00"}]}
    return parse_schedule("p", raw).periods[0]


@settings(max_examples=200, deadline=None)
@given(day=dates, weekday=st.integers(0, 6), which=st.sampled_from(["1", "2", "3", "4", "5", "L"]))
def test_nth_weekday_of_the_month(day: date, weekday: int, which: str) -> None:
    period = _one_period(days=f"{DAY_NAMES[weekday]}#{which}")
    expected = day.weekday() == weekday and (
        _is_last_weekday_by_counting(day) if which == "L" else _nth_by_counting(day) == int(which))
    assert period.applies_on(day) == expected


@settings(max_examples=200, deadline=None)
@given(day=dates)
def test_last_day_of_the_month_including_leap_february(day: date) -> None:
    period = _one_period(monthdays="L")
    last = stdlib_calendar.monthrange(day.year, day.month)[1]
    assert period.applies_on(day) == (day.day == last)


def test_leap_day_and_last_day_of_february() -> None:
    period = _one_period(monthdays="29,L")
    assert period.applies_on(date(2028, 2, 29)) and period.applies_on(date(2027, 2, 28))
    assert not period.applies_on(date(2027, 2, 27))
    yearly = parse_schedule("y", {"periods": [{"days": "*", "start": "08:00"}], "skip_dates": ["*-02-29"]})
    assert yearly.skip_reason(date(2028, 2, 29)) == "skip date 2028-02-29"
    assert yearly.skip_reason(date(2027, 2, 28)) is None and yearly.skip_reason(date(2027, 3, 1)) is None


@settings(max_examples=150, deadline=None)
@given(day=dates, first=st.integers(1, 12), last=st.integers(1, 12), monthdays=st.sampled_from(["1-7", "15", "1,15"]))
def test_every_field_a_period_sets_must_match(day: date, first: int, last: int, monthdays: str) -> None:
    months_text = f"{MONTH_NAMES[first - 1]}-{MONTH_NAMES[last - 1]}"
    period = _one_period(days="mon-fri", monthdays=monthdays, months=months_text)
    months = {(first - 1 + k) % 12 + 1 for k in range((last - first) % 12 + 1)}  # wraps: nov-feb
    wanted_days = {"1-7": set(range(1, 8)), "15": {15}, "1,15": {1, 15}}[monthdays]
    expected = day.weekday() < 5 and day.month in months and day.day in wanted_days
    assert period.applies_on(day) == expected


def test_a_period_without_days_runs_mon_fri_or_every_day_of_its_monthdays() -> None:
    assert _one_period().days == frozenset(range(5))
    assert _one_period(monthdays="1").days == frozenset(range(7))


@pytest.mark.parametrize(("text", "expected"), [
    ("mon#1", (set(), {(0, 1)})), ("fri#L", (set(), {(4, LAST)})),
    ("mon-fri,sat#1", ({0, 1, 2, 3, 4}, {(5, 1)})), ("*", (set(range(7)), set())),
])
def test_day_spec(text: str, expected: tuple[set[int], set[tuple[int, int]]]) -> None:
    assert parse_day_spec(text) == (frozenset(expected[0]), frozenset(expected[1]))


def test_monthdays_and_months_syntax() -> None:
    assert parse_monthdays("1-3,15,L") == frozenset({1, 2, 3, 15, LAST})
    assert parse_monthdays("l") == frozenset({LAST})
    assert parse_months("jan-mar,dec") == frozenset({1, 2, 3, 12})
    assert parse_months("nov-feb") == frozenset({11, 12, 1, 2})


@pytest.mark.parametrize(("raw", "message"), [
    ({"days": "mon#6", "start": "08:00"}, "'#6' must be #1 to #5 or #L"),
    ({"days": "mon#", "start": "08:00"}, "must be #1 to #5"),
    ({"monthdays": "0", "start": "08:00"}, "0 is not a day of the month"),
    ({"monthdays": "32", "start": "08:00"}, "32 is not a day of the month"),
    ({"monthdays": "7-1", "start": "08:00"}, "ends before it starts"),
    ({"monthdays": "L-3", "start": "08:00"}, "cannot start at L"),
    ({"monthdays": "first", "start": "08:00"}, "'first' is not a day of the month"),
    ({"months": "jan-mrz", "start": "08:00"}, "'mrz' is not a month"),
    ({"weeks": "1", "start": "08:00"}, "unknown field(s) weeks"),
])
def test_malformed_calendar_fields_name_the_period_and_field(raw: dict[str, str], message: str) -> None:
    with pytest.raises(ScheduleError, match=r"schedule 'x': periods\[0\]") as info:
        parse_schedule("x", {"periods": [raw]})
    assert message in str(info.value)


@pytest.mark.parametrize(("entry", "message"), [
    ("2027-01-01..2026-12-24", "the range ends before it starts"),
    ("2026-12-24..2027-13-01", "'2027-13-01' is not a valid date"),
    ("*-02-30", "not a valid yearly date"),
    ("*-2-3", "is not a yearly date *-MM-DD"),
    ("24.12.2026", "is not a date YYYY-MM-DD, a range"),
])
def test_malformed_skip_dates(entry: str, message: str) -> None:
    with pytest.raises(ScheduleError, match="skip_dates") as info:
        parse_schedule("x", {"periods": [{"start": "08:00"}], "skip_dates": [entry]})
    assert message in str(info.value)


@pytest.mark.parametrize(("ref", "ok"), [
    ("s3://ops-calendars/holidays.ics", True), ("s3://ops-calendars/team/2026/holidays.ics", True),
    ("ssm:release-freeze", True), ("https://example.com/h.ics", False), ("ssm:", False), ("s3://b", False),
])
def test_calendar_reference(ref: str, ok: bool) -> None:
    raw = {"periods": [{"start": "08:00"}], "calendar": ref}
    if ok:
        assert parse_schedule("x", raw).calendar == ref
    else:
        with pytest.raises(ScheduleError, match="calendar"):
            parse_schedule("x", raw)


def test_retain_running_contradicts_enforced() -> None:
    with pytest.raises(ScheduleError, match="retain_running and enforced contradict"):
        parse_schedule("x", {"periods": [{"start": "08:00"}], "retain_running": True, "enforced": True})


@settings(max_examples=100, deadline=None)
@given(first=st.dates(min_value=date(2024, 12, 1), max_value=date(2031, 12, 31)), length=st.integers(0, 20),
       minute=st.integers(0, 24 * 60 - 1))
def test_skip_ranges_across_year_ends_stop_every_day_they_cover(first: date, length: int, minute: int) -> None:
    last = first + timedelta(days=length)
    s = parse_schedule("r", {"timezone": "Europe/Berlin", "skip_dates": [f"{first}..{last}"],
                             "periods": [{"days": "*", "start": "00:00", "stop": "23:59"}]})
    for day in (first, first + timedelta(days=length // 2), last):
        local = datetime.combine(day, time(minute // 60, minute % 60), BERLIN)
        assert desired_state(s, local).state == STOPPED
    after = datetime.combine(last + timedelta(days=1), time(12), BERLIN)
    assert desired_state(s, after).state == RUNNING


def test_nth_weekday_start_in_the_spring_forward_gap() -> None:
    """The last Sunday of March 2026 is the DST change in Berlin: 02:30 does not exist, it starts at 03:00 CEST."""
    s = parse_schedule("d", {"timezone": "Europe/Berlin",
                             "periods": [{"days": "sun#L", "months": "mar,oct", "start": "02:30", "stop": "06:00"}]})
    found = [(t.at, t.state) for t in timeline(s, date(2026, 3, 1), date(2026, 10, 31))]
    assert found == [
        (datetime(2026, 3, 29, 1, 0, tzinfo=UTC), RUNNING), (datetime(2026, 3, 29, 4, 0, tzinfo=UTC), STOPPED),
        # 25 October: 02:30 occurs twice; the first one (CEST, 00:30 UTC) is taken
        (datetime(2026, 10, 25, 0, 30, tzinfo=UTC), RUNNING), (datetime(2026, 10, 25, 5, 0, tzinfo=UTC), STOPPED),
    ]


def test_monthly_one_sided_marks_are_remembered_for_weeks() -> None:
    s = parse_schedule("m", {"timezone": "UTC", "periods": [{"monthdays": "1", "start": "06:00"},
                                                           {"monthdays": "20", "stop": "18:00"}]})
    assert desired_state(s, datetime(2026, 12, 15, tzinfo=UTC)).state == RUNNING  # the 1st's start, 14 days back
    assert desired_state(s, datetime(2026, 12, 25, tzinfo=UTC)).state == STOPPED
    january = desired_state(s, datetime(2027, 1, 1, 7, tzinfo=UTC))
    assert january.state == RUNNING and "monthdays 1" in january.reason


# ------------------------------------------------------------------------------------ calendars


ICS = """BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//opsauto tests//EN
BEGIN:VEVENT
UID:christmas@example.com
DTSTAMP:20200101T000000Z
DTSTART;VALUE=DATE:20201225
DTEND;VALUE=DATE:20201227
RRULE:FREQ=YEARLY
EXDATE;VALUE=DATE:20271225
SUMMARY:Christmas (two days)
END:VEVENT
BEGIN:VEVENT
UID:review@example.com
DTSTAMP:20200101T000000Z
DTSTART;VALUE=DATE:20260105
RRULE:FREQ=MONTHLY;BYDAY=1MO;COUNT=3
END:VEVENT
BEGIN:VEVENT
UID:review@example.com
DTSTAMP:20200101T000000Z
RECURRENCE-ID;VALUE=DATE:20260202
DTSTART;VALUE=DATE:20260203
SUMMARY:moved by a day
END:VEVENT
BEGIN:VEVENT
UID:meeting@example.com
DTSTAMP:20200101T000000Z
DTSTART:20261224T090000Z
DTEND:20261224T100000Z
END:VEVENT
END:VCALENDAR
"""


def test_ics_all_day_events_rrules_exdates_and_moved_occurrences() -> None:
    found = sorted(ics_skip_dates(ICS, date(2026, 1, 1), date(2027, 12, 31)))
    assert found == [date(2026, 1, 5), date(2026, 2, 3), date(2026, 3, 2), date(2026, 12, 25), date(2026, 12, 26)]


def test_ics_only_the_dates_asked_for() -> None:
    assert ics_skip_dates(ICS, date(2026, 12, 26), date(2026, 12, 26)) == frozenset({date(2026, 12, 26)})


@pytest.mark.parametrize("text", ["hello", "BEGIN:VEVENT\nEND:VEVENT\n"])
def test_not_an_icalendar_file(text: str) -> None:
    with pytest.raises(CalendarError):
        ics_skip_dates(text, date(2026, 1, 1), date(2026, 2, 1))


def test_calendar_dates_are_skip_dates_of_the_schedule() -> None:
    from dataclasses import replace

    s = parse_schedule("c", {"timezone": "Europe/Berlin", "calendar": "s3://ops-cal/h.ics",
                             "periods": [{"days": "*", "start": "08:00", "stop": "18:00"}]})
    s = replace(s, calendar_dates=ics_skip_dates(ICS, date(2026, 12, 1), date(2026, 12, 31)))
    at = desired_state(s, datetime(2026, 12, 25, 10, tzinfo=BERLIN))
    assert at.state == STOPPED and "calendar s3://ops-cal/h.ics lists 2026-12-25" in at.reason
    assert desired_state(s, datetime(2026, 12, 24, 10, tzinfo=BERLIN)).state == RUNNING  # a timed event: no skip


def _answers(spans: list[tuple[str, str, str | None]]) -> tuple[list[datetime], object]:
    asked: list[datetime] = []

    def state_at(at: datetime) -> tuple[str, datetime | None]:
        asked.append(at)
        for begin, state, nxt in spans:
            if at >= datetime.fromisoformat(begin):
                answer = (state, datetime.fromisoformat(nxt) if nxt else None)
        return answer

    return asked, state_at


def test_change_calendar_walk_follows_transitions() -> None:
    low, high = datetime(2026, 12, 1, tzinfo=UTC), datetime(2026, 12, 4, tzinfo=UTC)
    asked, state_at = _answers([("2026-11-01T00:00+00:00", "OPEN", "2026-12-02T09:00+00:00"),
                                ("2026-12-02T09:00+00:00", "CLOSED", "2026-12-02T17:00+00:00"),
                                ("2026-12-02T17:00+00:00", "OPEN", None)])
    closed = closed_intervals(state_at, low, high)  # type: ignore[arg-type]
    assert closed == ((datetime(2026, 12, 2, 9, tzinfo=UTC), datetime(2026, 12, 2, 17, tzinfo=UTC)),)
    assert len(asked) == 3
    s = parse_schedule("f", {"timezone": "UTC", "calendar": "ssm:freeze",
                             "periods": [{"days": "*", "start": "08:00", "stop": "18:00"}]})
    from dataclasses import replace

    frozen = replace(s, closed=closed)
    assert [(t.at.hour, t.state) for t in timeline(frozen, date(2026, 12, 2), date(2026, 12, 2))] == [
        (8, RUNNING), (9, STOPPED)]  # the window that runs into the CLOSED interval ends when it begins


def test_change_calendar_closed_throughout_and_bounded_calls() -> None:
    low, high = datetime(2026, 12, 1, tzinfo=UTC), datetime(2026, 12, 4, tzinfo=UTC)
    _, always = _answers([("2026-01-01T00:00+00:00", "CLOSED", None)])
    assert closed_intervals(always, low, high) == ((low, high),)  # type: ignore[arg-type]
    flips = [(f"2026-12-01T{h:02d}:00+00:00", "OPEN" if h % 2 else "CLOSED", f"2026-12-01T{h + 1:02d}:00+00:00")
             for h in range(20)]
    asked, flipping = _answers(flips)
    closed_intervals(flipping, low, high, max_calls=8)  # type: ignore[arg-type]
    assert len(asked) == 8


# ------------------------------------------------------------------------------------ maintenance windows


def test_maintenance_window_across_the_week_boundary() -> None:
    window = parse_maintenance_window("sun:23:45-mon:00:15")
    assert window is not None and window.minutes == 30
    base = desired_state(parse_schedule("o", {"periods": [{"days": "mon-fri", "start": "08:00", "stop": "18:00"}]}),
                         datetime(2026, 12, 6, 23, 30, tzinfo=UTC))
    during = maintenance_state(base, window, datetime(2026, 12, 6, 23, 30, tzinfo=UTC))  # Sunday 23:30: 15 min ahead
    assert during.state == RUNNING and during.since == datetime(2026, 12, 6, 23, 30, tzinfo=UTC)
    after = maintenance_state(base, window, datetime(2026, 12, 7, 0, 20, tzinfo=UTC))
    assert after.state == STOPPED and after.since == datetime(2026, 12, 7, 0, 15, tzinfo=UTC)
    assert "ended" in after.reason


@pytest.mark.parametrize("text", ["", "sun:05:00", "sun:25:00-sun:26:00", "sun:05:00-sun:05:00", "funday:1-2"])
def test_unreadable_maintenance_windows_are_ignored(text: str) -> None:
    assert parse_maintenance_window(text) is None
