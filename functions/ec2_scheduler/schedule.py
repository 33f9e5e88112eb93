"""Schedules: parsing and evaluation. Pure: no boto3, no environment, time always passed in.

A schedule is a timezone, one or more periods and optional skip dates and calendar::

    {"office-hours": {"timezone": "Europe/Berlin",
                      "periods": [{"days": "mon-fri", "start": "08:00", "stop": "18:00"},
                                  {"days": "sat#1", "start": "09:00", "stop": "12:00"},
                                  {"monthdays": "L", "months": "jan-mar,dec", "start": "18:00", "stop": "22:00"}],
                      "skip_dates": ["2026-12-24", "2026-12-27..2027-01-01", "*-05-01"],
                      "calendar": "s3://ops-calendars/holidays.ics", "enforced": false,
                      "stop_new_instances": true, "hibernate": false, "retain_running": false,
                      "maintenance_window": false}}

A period applies on a day when every field it sets matches: ``days`` (weekdays, or the nth weekday of the
month: ``mon#1``, ``fri#L`` for the last Friday), ``monthdays`` (``1-7``, ``15``, ``L`` for the last day,
lists ``1,15``) and ``months`` (``jan-mar,dec``). Without ``days`` a period runs mon-fri, or every day
when it sets ``monthdays``. A skip date is a date, an inclusive range ``a..b`` or a yearly ``*-12-25``;
the calendar's dates (an iCalendar file's all-day events) are skip dates too, and the intervals in which
an SSM Change Calendar is CLOSED stop the schedule like a skip date (``closed``, filled in at run time).

A resource runs while any of its schedule's periods says so (docs/ec2_scheduler.md). A period with a
``start`` and a ``stop`` is a window (overnight when ``stop`` <= ``start``: the stop falls on the next
day); a period with only one of them is a mark that sets the state at its time until the next mark. The
state at an instant: stopped on a skip date; else running while a window holds or the latest mark says
running. ``timeline()`` lists the transitions: a window's start or end that changes the state, a mark,
the 00:00 of a skip date. Every transition acts (``plan.decide``), even when the state stays the same.

Daylight saving: transitions are local wall times converted with the zone's rules for that date. A time
inside a spring-forward gap is the first instant after the gap; a time that occurs twice in autumn is
taken at its first occurrence.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

State = Literal["running", "stopped"]
RUNNING: State = "running"
STOPPED: State = "stopped"

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MONTH_NAMES = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
LAST = -1  # "L": the last day of the month, or the last such weekday of the month
_TIME_RE = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_YEARLY_RE = re.compile(r"^\*-(\d{2})-(\d{2})$")
_MONTHDAY_RE = re.compile(r"^(\d{1,2}|l)(?:-(\d{1,2}|l))?$")
# A weekly schedule always has a transition within the last 7 days; one more day for overnight stops
# and another for skip dates keeps the look-back safe. A schedule with monthly or yearly periods looks
# back far enough to see its last one-sided mark (a period of one month of the year recurs yearly).
_LOOKBACK_DAYS = 9
_LONG_LOOKBACK_DAYS = 400
CALENDAR_PREFIXES = ("s3://", "ssm:")
_S3_URI_RE = re.compile(r"^s3://([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])/(\S+)$")
_SSM_NAME_RE = re.compile(r"^ssm:([A-Za-z0-9_.-]{3,128})$")


class ScheduleError(ValueError):
    """A schedule is malformed; the message names the field."""


def parse_day_spec(text: Any) -> tuple[frozenset[int], frozenset[tuple[int, int]]]:
    """``days``: (weekday numbers, {(weekday, n)} of nth weekdays; n 1-5 or LAST).

    ``mon-fri``, ``sat,sun``, ``mon,wed-fri``, ``fri-mon`` (wraps), ``*``, and ``mon#1`` (the first Monday
    of the month), ``fri#L`` (the last Friday), mixed in a comma list: ``mon-fri,sat#1``.
    """
    if not isinstance(text, str) or not text.strip():
        raise ScheduleError("days must be a non-empty string like 'mon-fri', 'sat,sun' or 'mon#1'")
    cleaned = text.strip().lower()
    if cleaned in ("*", "all", "daily"):
        return frozenset(range(7)), frozenset()
    result: set[int] = set()
    nth: set[tuple[int, int]] = set()
    for item in cleaned.split(","):
        part = item.strip()
        if part == "*":
            result.update(range(7))
        elif "#" in part:
            name, _, which = part.partition("#")
            nth.add((_day(name.strip(), text), _nth(which.strip(), text)))
        elif "-" in part:
            first, _, last = part.partition("-")
            a, b = _day(first.strip(), text), _day(last.strip(), text)
            day = a
            result.add(day)
            while day != b:
                day = (day + 1) % 7
                result.add(day)
        else:
            result.add(_day(part, text))
    return frozenset(result), frozenset(nth)


def parse_days(text: str) -> frozenset[int]:
    """The plain weekdays of ``days`` (Monday 0); nth weekdays (``mon#1``) are validated and left out."""
    return parse_day_spec(text)[0]


def _day(name: str, text: str) -> int:
    if name not in DAY_NAMES:
        raise ScheduleError(f"days {text!r}: {name!r} is not a day; use mon, tue, wed, thu, fri, sat, sun, "
                            "ranges like mon-fri, nth weekdays like mon#1 or fri#L, commas, or *")
    return DAY_NAMES.index(name)


def _nth(which: str, text: str) -> int:
    if which == "l":
        return LAST
    if which in ("1", "2", "3", "4", "5"):
        return int(which)
    raise ScheduleError(f"days {text!r}: '#{which}' must be #1 to #5 or #L (the last of the month)")


def parse_monthdays(text: Any) -> frozenset[int]:
    """``monthdays``: ``1-7``, ``15``, ``L`` (the last day), lists ``1,15``, ``25-L`` → day numbers (LAST for L)."""
    if not isinstance(text, str) or not text.strip():
        raise ScheduleError("monthdays must be a non-empty string like '1-7', '15', 'L' or '1,15'")
    result: set[int] = set()
    for item in text.strip().lower().split(","):
        match = _MONTHDAY_RE.match(item.strip())
        if not match:
            raise ScheduleError(f"monthdays {text!r}: {item.strip()!r} is not a day of the month (1-31, L, or a "
                                "range like 1-7)")
        first, last = match.group(1), match.group(2)
        a = LAST if first == "l" else int(first)
        b = a if last is None else (LAST if last == "l" else int(last))
        if a == LAST and b != LAST:
            raise ScheduleError(f"monthdays {text!r}: a range cannot start at L")
        for number in (a, b):
            if number != LAST and not 1 <= number <= 31:
                raise ScheduleError(f"monthdays {text!r}: {number} is not a day of the month (1-31 or L)")
        if b != LAST and b < a:
            raise ScheduleError(f"monthdays {text!r}: range {item.strip()!r} ends before it starts")
        result.update(range(a, (31 if b == LAST else b) + 1) if a != LAST else ())
        if b == LAST:
            result.add(LAST)
    return frozenset(result)


def parse_months(text: Any) -> frozenset[int]:
    """``months``: ``jan-mar,dec``, ``nov-feb`` (wraps), ``jun`` or ``*`` → month numbers 1-12."""
    if not isinstance(text, str) or not text.strip():
        raise ScheduleError("months must be a non-empty string like 'jan-mar,dec'")
    cleaned = text.strip().lower()
    if cleaned == "*":
        return frozenset(range(1, 13))
    result: set[int] = set()
    for item in cleaned.split(","):
        first, _, last = item.strip().partition("-")
        a = _month(first.strip(), text)
        b = _month(last.strip(), text) if last else a
        month = a
        result.add(month)
        while month != b:
            month = month % 12 + 1
            result.add(month)
    return frozenset(result)


def _month(name: str, text: str) -> int:
    if name not in MONTH_NAMES:
        raise ScheduleError(f"months {text!r}: {name!r} is not a month; use jan, feb, ... dec, ranges like "
                            "jan-mar, commas, or *")
    return MONTH_NAMES.index(name) + 1


def _last_day(day: date) -> bool:
    return (day + timedelta(days=1)).month != day.month


def nth_of_month(day: date) -> tuple[int, bool]:
    """Which occurrence of its weekday ``day`` is in its month (1-5), and whether it is the last one."""
    return (day.day - 1) // 7 + 1, (day + timedelta(days=7)).month != day.month


def parse_hhmm(text: Any, what: str) -> time:
    if not isinstance(text, str) or not _TIME_RE.match(text.strip()):
        raise ScheduleError(f"{what} {text!r} is not a time HH:MM (00:00-23:59)")
    hours, minutes = text.strip().split(":")
    return time(int(hours), int(minutes))


def parse_skip_date(text: Any) -> date:
    """A local date ``YYYY-MM-DD``."""
    if not isinstance(text, str) or not _DATE_RE.match(text.strip()):
        raise ScheduleError(f"{text!r} is not a date YYYY-MM-DD")
    try:
        return date.fromisoformat(text.strip())
    except ValueError as exc:
        raise ScheduleError(f"{text!r} is not a valid date ({exc})") from None


SkipEntry = date | tuple[date, date] | tuple[int, int]


def parse_skip_entry(text: Any) -> SkipEntry:
    """One ``skip_dates`` entry: a date ``2026-12-24``, an inclusive range ``2026-12-24..2027-01-01``
    (a (first, last) pair of dates) or a yearly date ``*-12-25`` (a (month, day) pair)."""
    if isinstance(text, str) and ".." in text:
        first_text, _, last_text = text.strip().partition("..")
        first, last = parse_skip_date(first_text), parse_skip_date(last_text)
        if last < first:
            raise ScheduleError(f"{text!r}: the range ends before it starts")
        return first, last
    if isinstance(text, str) and text.strip().startswith("*"):
        match = _YEARLY_RE.match(text.strip())
        if not match:
            raise ScheduleError(f"{text!r} is not a yearly date *-MM-DD (e.g. *-12-25)")
        month, day = int(match.group(1)), int(match.group(2))
        try:
            date(2000, month, day)  # a leap year: *-02-29 is valid (it applies in leap years)
        except ValueError:
            raise ScheduleError(f"{text!r} is not a valid yearly date (month 01-12, a day of that month)") from None
        return month, day
    if isinstance(text, str) and _DATE_RE.match(text.strip()):
        return parse_skip_date(text)
    raise ScheduleError(f"{text!r} is not a date YYYY-MM-DD, a range YYYY-MM-DD..YYYY-MM-DD or a yearly "
                        "date *-MM-DD")


def parse_calendar(text: Any) -> str:
    """``calendar``: ``s3://bucket/key.ics`` (an iCalendar file) or ``ssm:<name>`` (an SSM Change Calendar)."""
    value = text.strip() if isinstance(text, str) else ""
    if _S3_URI_RE.match(value) or _SSM_NAME_RE.match(value):
        return value
    raise ScheduleError(f"calendar {text!r} must be the S3 URI of an iCalendar file (s3://bucket/holidays.ics) "
                        "or ssm:<name> of an SSM Change Calendar")


def calendar_location(ref: str) -> tuple[str, str]:
    """``s3://bucket/key`` → ("s3", "bucket/key"); ``ssm:name`` → ("ssm", "name")."""
    if ref.startswith("ssm:"):
        return "ssm", ref[4:]
    return "s3", ref[5:]


def s3_location(ref: str) -> tuple[str, str]:
    """``s3://bucket/path/key.ics`` → (bucket, key)."""
    kind, rest = calendar_location(ref)
    if kind != "s3":
        raise ValueError(f"{ref!r} is not an S3 calendar")
    bucket, _, key = rest.partition("/")
    return bucket, key


def parse_timezone(text: Any) -> ZoneInfo:
    if not isinstance(text, str) or not text.strip():
        raise ScheduleError("timezone must be an IANA name such as 'Europe/Berlin' or 'UTC'")
    try:
        return ZoneInfo(text.strip())
    except (ZoneInfoNotFoundError, ValueError):
        raise ScheduleError(f"timezone {text!r} is not an IANA timezone (e.g. 'Europe/Berlin', "
                            "'America/New_York', 'UTC')") from None


@dataclass(frozen=True)
class Period:
    days: frozenset[int]
    start: time | None = None
    stop: time | None = None
    nth: frozenset[tuple[int, int]] = frozenset()  # (weekday, 1-5 or LAST): mon#1, fri#L
    monthdays: frozenset[int] | None = None  # None: any day of the month; LAST: the last day
    months: frozenset[int] | None = None  # None: every month

    def __post_init__(self) -> None:
        if self.start is None and self.stop is None:
            raise ScheduleError("a period needs a start, a stop or both")
        if self.start is not None and self.start == self.stop:
            raise ScheduleError("a period's start and stop must differ")
        if not self.days and not self.nth:
            raise ScheduleError("a period needs at least one day")
        if self.monthdays is not None and not self.monthdays:
            raise ScheduleError("monthdays needs at least one day of the month")
        if self.months is not None and not self.months:
            raise ScheduleError("months needs at least one month")

    def applies_on(self, day: date) -> bool:
        """Whether the period has its start (or its one-sided time) on local date ``day``: every field it sets
        matches."""
        if self.months is not None and day.month not in self.months:
            return False
        if self.monthdays is not None and day.day not in self.monthdays \
                and not (LAST in self.monthdays and _last_day(day)):
            return False
        if day.weekday() in self.days:
            return True
        if not self.nth:
            return False
        number, last = nth_of_month(day)
        return (day.weekday(), number) in self.nth or (last and (day.weekday(), LAST) in self.nth)

    @property
    def weekly(self) -> bool:
        """Whether it recurs every week (no nth weekday, month days or months)."""
        return not self.nth and self.monthdays is None and self.months is None

    @property
    def overnight(self) -> bool:
        return self.start is not None and self.stop is not None and self.stop < self.start


@dataclass(frozen=True)
class Schedule:
    name: str
    timezone: ZoneInfo
    periods: tuple[Period, ...]
    skip_dates: frozenset[date] = frozenset()
    enforced: bool = False
    stop_new_instances: bool = True
    hibernate: bool = False
    skip_ranges: tuple[tuple[date, date], ...] = ()  # inclusive (first, last)
    skip_yearly: frozenset[tuple[int, int]] = frozenset()  # (month, day)
    calendar: str | None = None  # s3://bucket/key.ics or ssm:<change calendar>
    retain_running: bool = False
    maintenance_window: bool = False
    # Filled in at run time from ``calendar`` (calendars.py): an iCalendar file's all-day events, and the
    # intervals (UTC) in which a Change Calendar is CLOSED.
    calendar_dates: frozenset[date] = frozenset()
    closed: tuple[tuple[datetime, datetime], ...] = ()

    def __post_init__(self) -> None:
        if not self.periods:
            raise ScheduleError("a schedule needs at least one period")
        if self.retain_running and self.enforced:
            raise ScheduleError("retain_running and enforced contradict each other: an enforced schedule stops "
                                "a resource started by hand")

    @property
    def has_starts(self) -> bool:
        return any(p.start is not None for p in self.periods)

    @property
    def has_stops(self) -> bool:
        return any(p.stop is not None for p in self.periods)

    @property
    def lookback_days(self) -> int:
        return _LOOKBACK_DAYS if all(p.weekly for p in self.periods) else _LONG_LOOKBACK_DAYS

    def skip_reason(self, day: date) -> str | None:
        """Why local date ``day`` is a skip date (None: it is none)."""
        if day in self.skip_dates or (day.month, day.day) in self.skip_yearly \
                or any(first <= day <= last for first, last in self.skip_ranges):
            return f"skip date {day.isoformat()}"
        if day in self.calendar_dates:
            return f"calendar {self.calendar} lists {day.isoformat()}"
        return None


@dataclass(frozen=True)
class Desired:
    """The schedule's desired state at a moment, and why (the transition that set it)."""

    state: State
    reason: str
    since: datetime = field(compare=False)


_FLAGS = (("enforced", False), ("stop_new_instances", True), ("hibernate", False), ("retain_running", False),
          ("maintenance_window", False))
SCHEDULE_FIELDS = frozenset({"timezone", "periods", "skip_dates", "calendar"} | {flag for flag, _ in _FLAGS})
PERIOD_FIELDS = frozenset({"days", "monthdays", "months", "start", "stop"})


def parse_schedule(name: str, raw: Any) -> Schedule:
    """One schedule from its settings JSON; raises ScheduleError naming the schedule and field."""
    if not isinstance(raw, dict):
        raise ScheduleError(f"schedule {name!r}: must be an object")
    unknown = sorted(set(raw) - SCHEDULE_FIELDS)
    if unknown:
        raise ScheduleError(f"schedule {name!r}: unknown field(s) {', '.join(unknown)}")
    try:
        zone = parse_timezone(raw.get("timezone", "UTC"))
        raw_periods = raw.get("periods")
        if not isinstance(raw_periods, list) or not raw_periods:
            raise ScheduleError("periods must be a non-empty list")
        periods = tuple(_parse_period(index, item) for index, item in enumerate(raw_periods))
        skips = _parse_skips(raw.get("skip_dates") or [])
        calendar = parse_calendar(raw["calendar"]) if raw.get("calendar") is not None else None
        flags: dict[str, bool] = {}
        for flag, default in _FLAGS:
            value = raw.get(flag, default)
            if not isinstance(value, bool):
                raise ScheduleError(f"{flag} must be true or false, not {value!r}")
            flags[flag] = value
        return Schedule(name=name, timezone=zone, periods=periods, skip_dates=skips[0], skip_ranges=skips[1],
                        skip_yearly=skips[2], calendar=calendar, enforced=flags["enforced"],
                        stop_new_instances=flags["stop_new_instances"], hibernate=flags["hibernate"],
                        retain_running=flags["retain_running"], maintenance_window=flags["maintenance_window"])
    except ScheduleError as exc:
        raise ScheduleError(f"schedule {name!r}: {exc}") from None


def _parse_skips(raw: Any) -> tuple[frozenset[date], tuple[tuple[date, date], ...], frozenset[tuple[int, int]]]:
    if not isinstance(raw, list):
        raise ScheduleError("skip_dates must be a list of dates YYYY-MM-DD, ranges YYYY-MM-DD..YYYY-MM-DD or "
                            "yearly dates *-MM-DD")
    dates: set[date] = set()
    ranges: list[tuple[date, date]] = []
    yearly: set[tuple[int, int]] = set()
    for item in raw:
        try:
            entry = parse_skip_entry(item)
        except ScheduleError as exc:
            raise ScheduleError(f"skip_dates: {exc}") from None
        if isinstance(entry, date):
            dates.add(entry)
        elif isinstance(entry[0], date):
            ranges.append(entry)  # type: ignore[arg-type]
        else:
            yearly.add(entry)  # type: ignore[arg-type]
    return frozenset(dates), tuple(sorted(set(ranges))), frozenset(yearly)


def _parse_period(index: int, raw: Any) -> Period:
    where = f"periods[{index}]"
    if not isinstance(raw, dict):
        raise ScheduleError(f"{where} must be an object with days, monthdays, months, start and/or stop")
    unknown = sorted(set(raw) - PERIOD_FIELDS)
    if unknown:
        raise ScheduleError(f"{where}: unknown field(s) {', '.join(unknown)}")
    try:
        monthdays = parse_monthdays(raw["monthdays"]) if raw.get("monthdays") is not None else None
        months = parse_months(raw["months"]) if raw.get("months") is not None else None
        days, nth = parse_day_spec(raw.get("days") or default_days(monthdays is not None))
        start = parse_hhmm(raw["start"], "start") if raw.get("start") is not None else None
        stop = parse_hhmm(raw["stop"], "stop") if raw.get("stop") is not None else None
        return Period(days=days, start=start, stop=stop, nth=nth, monthdays=monthdays, months=months)
    except ScheduleError as exc:
        raise ScheduleError(f"{where}: {exc}") from None


def default_days(has_monthdays: bool) -> str:
    """A period without ``days`` runs mon-fri, or every day of its ``monthdays``."""
    return "*" if has_monthdays else "mon-fri"


def parse_schedules(raw: Any) -> tuple[dict[str, Schedule], dict[str, str]]:
    """Every schedule of the ``SCHEDULES`` JSON: (valid schedules, {name: error} of malformed ones).

    A malformed schedule does not stop the others from working.
    """
    if not isinstance(raw, dict):
        raise ScheduleError("SCHEDULES must be a JSON object {name: schedule}")
    good: dict[str, Schedule] = {}
    bad: dict[str, str] = {}
    for name, value in raw.items():
        try:
            good[str(name)] = parse_schedule(str(name), value)
        except ScheduleError as exc:
            bad[str(name)] = str(exc)
    return good, bad


def _local_instant(day: date, moment: time, zone: ZoneInfo) -> datetime:
    """``day`` ``moment`` as wall time in ``zone``, as a UTC instant.

    A wall time that occurs twice (autumn) is taken at its first occurrence (fold=0). One that does not
    exist (inside a spring-forward gap) is taken as the first instant after the gap, when the clocks show
    it or later: 02:30 on the night Berlin jumps 02:00 -> 03:00 is 03:00 CEST.
    """
    naive = datetime.combine(day, moment)
    instant = naive.replace(tzinfo=zone, fold=0).astimezone(UTC)
    if instant.astimezone(zone).replace(tzinfo=None) == naive:
        return instant
    probe = naive.replace(tzinfo=zone, fold=1).astimezone(UTC)  # an instant before the gap
    for _ in range(24 * 60):
        if probe.astimezone(zone).replace(tzinfo=None) >= naive:
            return probe
        probe += timedelta(minutes=1)
    return instant  # pragma: no cover - no zone has a gap of a day


@dataclass(frozen=True)
class Transition:
    """An instant at which the schedule's state is set: ``state`` from ``at`` (UTC), and why."""

    at: datetime
    state: State
    reason: str


@dataclass(frozen=True)
class _Window:
    start: datetime
    end: datetime
    start_reason: str
    end_reason: str


def _collect(schedule: Schedule, first: date, last: date) -> tuple[
        list[_Window], list[Transition], list[tuple[datetime, datetime]]]:
    """Windows (two-sided periods), one-sided marks (including skip dates' 00:00 stops) and blackouts
    (skip days, CLOSED calendar intervals) whose local date lies in ``first - 1 day``..``last``."""
    zone = schedule.timezone
    windows: list[_Window] = []
    marks: list[Transition] = []
    blackouts: list[tuple[datetime, datetime]] = []
    day = first - timedelta(days=1)
    while day <= last:
        skipped = schedule.skip_reason(day)
        if skipped is not None:
            begin = _local_instant(day, time(0), zone)
            blackouts.append((begin, _local_instant(day + timedelta(days=1), time(0), zone)))
            marks.append(Transition(begin, STOPPED, skipped))
        else:
            for index, period in enumerate(schedule.periods):
                if period.applies_on(day):
                    _period_items(index, period, day, zone, windows, marks)
        day += timedelta(days=1)
    low = _local_instant(first - timedelta(days=1), time(0), zone)
    high = _local_instant(last + timedelta(days=1), time(0), zone)
    for begin, end in schedule.closed:
        if begin < high and end > low:
            blackouts.append((begin, end))
            if begin >= low:
                marks.append(Transition(begin, STOPPED, f"calendar {schedule.calendar} is CLOSED"))
    blackouts.sort()
    return _cut(windows, blackouts), marks, blackouts


def _cut(windows: list[_Window], blackouts: list[tuple[datetime, datetime]]) -> list[_Window]:
    """A window that runs into a skip date ends when the skip date begins."""
    cut: list[_Window] = []
    for window in windows:
        end = window.end
        for begin, finish in blackouts:
            if window.start < begin < end:
                end = begin
            elif begin <= window.start < finish:
                end = window.start
        if end > window.start:
            cut.append(_Window(window.start, end, window.start_reason, window.end_reason))
    return cut


def _period_items(index: int, period: Period, day: date, zone: ZoneInfo, windows: list[_Window],
                  marks: list[Transition]) -> None:
    label = _period_label(index, period)
    if period.start is not None and period.stop is not None:
        stop_day = day + timedelta(days=1) if period.overnight else day
        start = _local_instant(day, period.start, zone)
        end = _local_instant(stop_day, period.stop, zone)
        if end > start:  # both inside one spring-forward gap: an empty window
            windows.append(_Window(start, end, f"{label} started at {period.start:%H:%M} {day:%a %Y-%m-%d}",
                                   f"{label} stopped at {period.stop:%H:%M} {stop_day:%a %Y-%m-%d}"))
    elif period.start is not None:
        marks.append(Transition(_local_instant(day, period.start, zone), RUNNING,
                                f"{label} started at {period.start:%H:%M} {day:%a %Y-%m-%d}"))
    elif period.stop is not None:
        marks.append(Transition(_local_instant(day, period.stop, zone), STOPPED,
                                f"{label} stopped at {period.stop:%H:%M} {day:%a %Y-%m-%d}"))


def timeline(schedule: Schedule, first: date, last: date) -> list[Transition]:
    """Every transition from local date ``first`` to ``last`` (inclusive), in order.

    The state at an instant: stopped on a skip date; otherwise running while any two-sided period's
    window holds, or while the latest one-sided mark (a start-only or stop-only period) says running.
    A transition is an instant where a window starts or ends and the state changes with it, or where a
    one-sided mark or a skip date begins and the state is then what it says (also when it already was):
    every such transition acts, even on a resource whose recorded state already equals it.
    """
    windows, marks, blackouts = _collect(schedule, first, last)
    instants = sorted({w.start for w in windows} | {w.end for w in windows} | {m.at for m in marks}
                      | {b for pair in blackouts for b in pair})
    marks.sort(key=lambda m: m.at)
    found: list[Transition] = []
    latch: State | None = None
    before: State = STOPPED
    mark_index = 0
    for instant in instants:
        here: list[Transition] = []
        while mark_index < len(marks) and marks[mark_index].at <= instant:
            latch = marks[mark_index].state
            here.append(marks[mark_index])
            mark_index += 1
        blackout = any(b <= instant < e for b, e in blackouts)
        active = [w for w in windows if w.start <= instant < w.end]
        state = STOPPED if blackout or not (active or latch == RUNNING) else RUNNING
        reason = _reason_at(instant, state, before, here, windows)
        if reason is not None and first <= instant.astimezone(schedule.timezone).date() <= last:
            found.append(Transition(instant, state, reason))
        before = state
    return found


def _reason_at(instant: datetime, state: State, before: State, marks: list[Transition],
               windows: list[_Window]) -> str | None:
    """Why ``instant`` is a transition to ``state`` (None: it is none)."""
    for mark in marks:
        if mark.state == state:
            return mark.reason
    if state == before:
        return None
    if state == RUNNING:
        return next((w.start_reason for w in windows if w.start == instant), None)
    return next((w.end_reason for w in windows if w.end == instant), None)


def transitions(schedule: Schedule, first: date, last: date) -> list[tuple[datetime, State, str]]:
    """``timeline`` as (UTC instant, state, reason) tuples."""
    return [(t.at, t.state, t.reason) for t in timeline(schedule, first, last)]


def days_label(days: frozenset[int], nth: frozenset[tuple[int, int]] = frozenset()) -> str:
    """{0, 1, 2, 3, 4} → ``mon-fri``; {0, 2, 3, 4} → ``mon,wed-fri``; all → ``*``; nth weekdays ``sat#1``."""
    extra = [f"{DAY_NAMES[d]}#{'L' if n == LAST else n}" for d, n in sorted(nth)]
    if len(days) == 7:
        return ",".join(["*", *extra])
    runs: list[list[int]] = []
    for day in sorted(days):
        if runs and day == runs[-1][-1] + 1:
            runs[-1].append(day)
        else:
            runs.append([day])
    parts = [DAY_NAMES[r[0]] if len(r) == 1 else f"{DAY_NAMES[r[0]]}-{DAY_NAMES[r[-1]]}" for r in runs]
    return ",".join(parts + extra)


def _numbers_label(numbers: frozenset[int], names: tuple[str, ...] | None = None) -> str:
    """{1, 2, 3, 7, LAST} → ``1-3,7,L``; with month names {1, 2, 3, 12} → ``jan-mar,dec``."""
    runs: list[list[int]] = []
    for number in sorted(n for n in numbers if n != LAST):
        if runs and number == runs[-1][-1] + 1:
            runs[-1].append(number)
        else:
            runs.append([number])

    def name(n: int) -> str:
        return names[n - 1] if names else str(n)

    parts = [name(r[0]) if len(r) == 1 else f"{name(r[0])}-{name(r[-1])}" for r in runs]
    return ",".join(parts + (["L"] if LAST in numbers else []))


def _period_label(index: int, period: Period) -> str:
    fields = [days_label(period.days, period.nth)] if period.days or period.nth else []
    if period.monthdays is not None:
        fields.append(f"monthdays {_numbers_label(period.monthdays)}")
    if period.months is not None:
        fields.append(f"months {_numbers_label(period.months, MONTH_NAMES)}")
    start = f"{period.start:%H:%M}" if period.start else "…"
    stop = f"{period.stop:%H:%M}" if period.stop else "…"
    return f"period {index + 1} ({', '.join(fields)} {start}-{stop})"


def desired_state(schedule: Schedule, now: datetime) -> Desired:
    """The state ``schedule`` wants at ``now`` (aware datetime), with the transition that set it."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    now_utc = now.astimezone(UTC)
    today = now_utc.astimezone(schedule.timezone).date()
    latest: Transition | None = None
    lookback = schedule.lookback_days
    for item in timeline(schedule, today - timedelta(days=lookback), today + timedelta(days=1)):
        if item.at > now_utc:
            break
        latest = item
    if latest is None:  # a long run of skip dates, or periods of other months only
        since = _local_instant(today - timedelta(days=lookback), time(0), schedule.timezone)
        return Desired(STOPPED, f"no transition in the last {lookback} days", since)
    local = latest.at.astimezone(schedule.timezone)
    return Desired(latest.state, f"schedule {schedule.name!r}: {latest.reason} ({local:%H:%M %Z})", latest.at)


def next_transition(schedule: Schedule, now: datetime) -> tuple[datetime, State] | None:
    """The first transition after ``now`` that changes the desired state (within two weeks, or a year
    for a schedule with monthly or yearly periods)."""
    current = desired_state(schedule, now).state
    today = now.astimezone(schedule.timezone).date()
    horizon = 14 if schedule.lookback_days == _LOOKBACK_DAYS else 366
    for item in timeline(schedule, today, today + timedelta(days=horizon)):
        if item.at > now.astimezone(UTC) and item.state != current:
            return item.at, item.state
    return None


# ------------------------------------------------------------------------------- RDS maintenance windows

_WINDOW_RE = re.compile(r"^(mon|tue|wed|thu|fri|sat|sun):([01]\d|2[0-3]):([0-5]\d)-"
                        r"(mon|tue|wed|thu|fri|sat|sun):([01]\d|2[0-3]):([0-5]\d)$")
MAINTENANCE_LEAD = timedelta(minutes=15)  # a database is started this long before its window (starting takes minutes)


@dataclass(frozen=True)
class MaintenanceWindow:
    """An RDS ``PreferredMaintenanceWindow``, ``sun:05:00-sun:05:30`` (UTC, weekly)."""

    text: str
    start_minute: int  # minutes after Monday 00:00 UTC
    minutes: int  # its length

    def occurrence(self, now: datetime) -> tuple[datetime, datetime]:
        """The latest window whose start less the lead time is at or before ``now``: (start, end) UTC."""
        moment = now.astimezone(UTC)
        monday = datetime.combine(moment.date() - timedelta(days=moment.weekday()), time(0), UTC)
        for weeks in (1, 0, -1):
            start = monday + timedelta(weeks=weeks, minutes=self.start_minute)
            if start - MAINTENANCE_LEAD <= moment:
                return start, start + timedelta(minutes=self.minutes)
        raise AssertionError("unreachable: last week's window always started before now")  # pragma: no cover


def parse_maintenance_window(text: str | None) -> MaintenanceWindow | None:
    """``sun:05:00-sun:05:30`` → MaintenanceWindow; None when absent or not in that form."""
    match = _WINDOW_RE.match((text or "").strip().lower())
    if not match:
        return None
    start = DAY_NAMES.index(match.group(1)) * 1440 + int(match.group(2)) * 60 + int(match.group(3))
    end = DAY_NAMES.index(match.group(4)) * 1440 + int(match.group(5)) * 60 + int(match.group(6))
    length = (end - start) % (7 * 1440)
    return MaintenanceWindow(match.group(0), start, length) if length else None


def maintenance_state(base: Desired, window: MaintenanceWindow, now: datetime) -> Desired:
    """The schedule's desired state ``base`` with the database's maintenance window laid over it: running
    from ``MAINTENANCE_LEAD`` before the window until its end, then the schedule's state again (the window's
    end is a transition, so a database started for it is stopped again)."""
    start, end = window.occurrence(now)
    label = f"maintenance window {window.text} (UTC)"
    if start - MAINTENANCE_LEAD <= now.astimezone(UTC) < end:
        return Desired(RUNNING, f"{label}: running so that pending maintenance is applied", start - MAINTENANCE_LEAD)
    if end > base.since:
        return Desired(base.state, f"{label} ended; {base.reason}", end)
    return base
