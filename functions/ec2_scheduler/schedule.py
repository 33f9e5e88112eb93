"""Schedules: parsing and evaluation. Pure: no boto3, no environment, time always passed in.

A schedule is a timezone, one or more periods and optional skip dates::

    {"office-hours": {"timezone": "Europe/Berlin",
                      "periods": [{"days": "mon-fri", "start": "08:00", "stop": "18:00"}],
                      "skip_dates": ["2026-12-24"], "enforced": false,
                      "stop_new_instances": true, "hibernate": false}}

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
_TIME_RE = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
# A weekly schedule always has a transition within the last 7 days; one more day for overnight stops
# and another for skip dates keeps the look-back safe.
_LOOKBACK_DAYS = 9


class ScheduleError(ValueError):
    """A schedule is malformed; the message names the field."""


def parse_days(text: str) -> frozenset[int]:
    """``mon-fri``, ``sat,sun``, ``mon,wed-fri``, ``fri-mon`` (wraps) or ``*`` → weekday numbers (Monday 0)."""
    if not isinstance(text, str) or not text.strip():
        raise ScheduleError("days must be a non-empty string like 'mon-fri' or 'sat,sun'")
    cleaned = text.strip().lower()
    if cleaned in ("*", "all", "daily"):
        return frozenset(range(7))
    result: set[int] = set()
    for item in cleaned.split(","):
        part = item.strip()
        if "-" in part:
            first, _, last = part.partition("-")
            a, b = _day(first.strip(), text), _day(last.strip(), text)
            day = a
            result.add(day)
            while day != b:
                day = (day + 1) % 7
                result.add(day)
        else:
            result.add(_day(part, text))
    return frozenset(result)


def _day(name: str, text: str) -> int:
    if name not in DAY_NAMES:
        raise ScheduleError(f"days {text!r}: {name!r} is not a day; use mon, tue, wed, thu, fri, sat, sun, "
                            "ranges like mon-fri, commas, or *")
    return DAY_NAMES.index(name)


def parse_hhmm(text: Any, what: str) -> time:
    if not isinstance(text, str) or not _TIME_RE.match(text.strip()):
        raise ScheduleError(f"{what} {text!r} is not a time HH:MM (00:00-23:59)")
    hours, minutes = text.strip().split(":")
    return time(int(hours), int(minutes))


def parse_skip_date(text: Any) -> date:
    """One ``skip_dates`` entry: a local date ``YYYY-MM-DD``."""
    if not isinstance(text, str) or not _DATE_RE.match(text.strip()):
        raise ScheduleError(f"{text!r} is not a date YYYY-MM-DD")
    try:
        return date.fromisoformat(text.strip())
    except ValueError as exc:
        raise ScheduleError(f"{text!r} is not a valid date ({exc})") from None


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

    def __post_init__(self) -> None:
        if self.start is None and self.stop is None:
            raise ScheduleError("a period needs a start, a stop or both")
        if self.start is not None and self.start == self.stop:
            raise ScheduleError("a period's start and stop must differ")
        if not self.days:
            raise ScheduleError("a period needs at least one day")

    def applies_on(self, day: date) -> bool:
        """Whether the period has its start (or its one-sided time) on local date ``day``."""
        return day.weekday() in self.days

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

    def __post_init__(self) -> None:
        if not self.periods:
            raise ScheduleError("a schedule needs at least one period")

    @property
    def has_starts(self) -> bool:
        return any(p.start is not None for p in self.periods)

    @property
    def has_stops(self) -> bool:
        return any(p.stop is not None for p in self.periods)


@dataclass(frozen=True)
class Desired:
    """The schedule's desired state at a moment, and why (the transition that set it)."""

    state: State
    reason: str
    since: datetime = field(compare=False)


def parse_schedule(name: str, raw: Any) -> Schedule:
    """One schedule from its settings JSON; raises ScheduleError naming the schedule and field."""
    if not isinstance(raw, dict):
        raise ScheduleError(f"schedule {name!r}: must be an object")
    known = {"timezone", "periods", "skip_dates", "enforced", "stop_new_instances", "hibernate"}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ScheduleError(f"schedule {name!r}: unknown field(s) {', '.join(unknown)}")
    try:
        zone = parse_timezone(raw.get("timezone", "UTC"))
        raw_periods = raw.get("periods")
        if not isinstance(raw_periods, list) or not raw_periods:
            raise ScheduleError("periods must be a non-empty list")
        periods = tuple(_parse_period(index, item) for index, item in enumerate(raw_periods))
        raw_skip = raw.get("skip_dates") or []
        if not isinstance(raw_skip, list):
            raise ScheduleError("skip_dates must be a list of YYYY-MM-DD dates")
        try:
            skip = frozenset(parse_skip_date(item) for item in raw_skip)
        except ScheduleError as exc:
            raise ScheduleError(f"skip_dates: {exc}") from None
        flags = {}
        for flag, default in (("enforced", False), ("stop_new_instances", True), ("hibernate", False)):
            value = raw.get(flag, default)
            if not isinstance(value, bool):
                raise ScheduleError(f"{flag} must be true or false, not {value!r}")
            flags[flag] = value
        return Schedule(name=name, timezone=zone, periods=periods, skip_dates=skip, **flags)
    except ScheduleError as exc:
        raise ScheduleError(f"schedule {name!r}: {exc}") from None


def _parse_period(index: int, raw: Any) -> Period:
    where = f"periods[{index}]"
    if not isinstance(raw, dict):
        raise ScheduleError(f"{where} must be an object with days, start and/or stop")
    unknown = sorted(set(raw) - {"days", "start", "stop"})
    if unknown:
        raise ScheduleError(f"{where}: unknown field(s) {', '.join(unknown)}")
    try:
        days = parse_days(raw.get("days", "*"))
        start = parse_hhmm(raw["start"], "start") if raw.get("start") is not None else None
        stop = parse_hhmm(raw["stop"], "stop") if raw.get("stop") is not None else None
        return Period(days=days, start=start, stop=stop)
    except ScheduleError as exc:
        raise ScheduleError(f"{where}: {exc}") from None


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
    """Windows (two-sided periods), one-sided marks (including skip dates' 00:00 stops) and skip-day
    blackouts whose local date lies in ``first - 1 day``..``last``."""
    zone = schedule.timezone
    windows: list[_Window] = []
    marks: list[Transition] = []
    blackouts = [(_local_instant(d, time(0), zone), _local_instant(d + timedelta(days=1), time(0), zone))
                 for d in sorted(schedule.skip_dates) if first - timedelta(days=1) <= d <= last]
    day = first - timedelta(days=1)
    while day <= last:
        if day not in schedule.skip_dates:
            for index, period in enumerate(schedule.periods):
                if period.applies_on(day):
                    _period_items(index, period, day, zone, windows, marks)
        day += timedelta(days=1)
    for begin, _ in blackouts:
        local = begin.astimezone(zone).date()
        marks.append(Transition(begin, STOPPED, f"skip date {local.isoformat()}"))
    # A window that runs into a skip date ends when the skip date begins.
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
    return cut, marks, blackouts


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


def days_label(days: frozenset[int]) -> str:
    """{0, 1, 2, 3, 4} → ``mon-fri``; {0, 2, 3, 4} → ``mon,wed-fri``; all → ``*``."""
    if len(days) == 7:
        return "*"
    runs: list[list[int]] = []
    for day in sorted(days):
        if runs and day == runs[-1][-1] + 1:
            runs[-1].append(day)
        else:
            runs.append([day])
    parts = [DAY_NAMES[r[0]] if len(r) == 1 else f"{DAY_NAMES[r[0]]}-{DAY_NAMES[r[-1]]}" for r in runs]
    return ",".join(parts)


def _period_label(index: int, period: Period) -> str:
    days = days_label(period.days)
    start = f"{period.start:%H:%M}" if period.start else "…"
    stop = f"{period.stop:%H:%M}" if period.stop else "…"
    return f"period {index + 1} ({days} {start}-{stop})"


def desired_state(schedule: Schedule, now: datetime) -> Desired:
    """The state ``schedule`` wants at ``now`` (aware datetime), with the transition that set it."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    now_utc = now.astimezone(UTC)
    today = now_utc.astimezone(schedule.timezone).date()
    latest: Transition | None = None
    for item in timeline(schedule, today - timedelta(days=_LOOKBACK_DAYS), today + timedelta(days=1)):
        if item.at > now_utc:
            break
        latest = item
    if latest is None:  # only possible with a long run of skip dates and no period days
        since = _local_instant(today - timedelta(days=_LOOKBACK_DAYS), time(0), schedule.timezone)
        return Desired(STOPPED, f"no transition in the last {_LOOKBACK_DAYS} days", since)
    local = latest.at.astimezone(schedule.timezone)
    return Desired(latest.state, f"schedule {schedule.name!r}: {latest.reason} ({local:%H:%M %Z})", latest.at)


def next_transition(schedule: Schedule, now: datetime) -> tuple[datetime, State] | None:
    """The first transition after ``now`` that changes the desired state (within two weeks)."""
    current = desired_state(schedule, now).state
    today = now.astimezone(schedule.timezone).date()
    for item in timeline(schedule, today, today + timedelta(days=14)):
        if item.at > now.astimezone(UTC) and item.state != current:
            return item.at, item.state
    return None
