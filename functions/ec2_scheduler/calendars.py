"""A schedule's ``calendar``: what it contributes, from text or answers already read. Pure: no boto3.

- ``s3://bucket/key.ics``: an iCalendar file. Every all-day event (``DTSTART;VALUE=DATE``), with its
  RRULE, RDATEs, EXDATEs and moved occurrences (RECURRENCE-ID), is a skip date: the local dates it
  covers in the schedule's timezone. Events with a time of day are not skip dates.
- ``ssm:<name>``: an SSM Change Calendar. ``GetCalendarState`` answers OPEN or CLOSED at an instant and
  the next transition; the intervals in which it is CLOSED stop the schedule like a skip date.

``CalendarBook`` keeps the last calendar read of each reference for the warm invocations that follow:
a calendar that cannot be read is reported and the schedule keeps the last one known (or acts without
one, and the report says so) instead of stopping everything.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta

import icalendar
import recurring_ical_events

from ec2_scheduler.schedule import Schedule, calendar_location

MAX_STATE_CALLS = 8  # GetCalendarState calls per change calendar per run (one per transition followed)


class CalendarError(ValueError):
    """A calendar's content cannot be used (not iCalendar, no such calendar ...)."""


def ics_skip_dates(text: str | bytes, first: date, last: date) -> frozenset[date]:
    """The local dates from ``first`` to ``last`` (inclusive) covered by the all-day events of ``text``."""
    try:
        calendar = icalendar.Calendar.from_ical(text)
    except (ValueError, IndexError, KeyError) as exc:
        raise CalendarError(f"not an iCalendar file: {exc}") from None
    if not isinstance(calendar, icalendar.Calendar) or calendar.name != "VCALENDAR":
        raise CalendarError("not an iCalendar file (no VCALENDAR)")
    try:
        events = recurring_ical_events.of(calendar).between(first, last + timedelta(days=1))
    except Exception as exc:
        raise CalendarError(f"cannot expand its events: {type(exc).__name__}: {exc}") from None
    found: set[date] = set()
    for event in events:
        begin = event.get("DTSTART")
        if begin is None or isinstance(begin.dt, datetime):
            continue  # an event with a time of day is not a skip date
        end_prop = event.get("DTEND")
        end = end_prop.dt if end_prop is not None and not isinstance(end_prop.dt, datetime) else None
        day: date = begin.dt
        stop = end if end is not None and end > day else day + timedelta(days=1)  # DTEND is exclusive
        while day < stop:
            if first <= day <= last:
                found.add(day)
            day += timedelta(days=1)
    return frozenset(found)


StateAt = Callable[[datetime], tuple[str, datetime | None]]


def closed_intervals(state_at: StateAt, low: datetime, high: datetime,
                     max_calls: int = MAX_STATE_CALLS) -> tuple[tuple[datetime, datetime], ...]:
    """The intervals within ``low``..``high`` in which a change calendar is CLOSED, by asking its state at
    ``low`` and following each answer's next transition (at most ``max_calls`` questions)."""
    found: list[tuple[datetime, datetime]] = []
    moment = low
    for _ in range(max_calls):
        state, upcoming = state_at(moment)
        until = high if upcoming is None else min(upcoming.astimezone(UTC), high)
        if state.upper() == "CLOSED" and until > moment:
            if found and found[-1][1] == moment:
                found[-1] = (found[-1][0], until)
            else:
                found.append((moment, until))
        if upcoming is None or until >= high or upcoming <= moment:
            break
        moment = until
    return tuple(found)


def span(schedule: Schedule, now: datetime) -> tuple[date, date]:
    """The local dates a run needs from the calendar: as far back as the schedule looks, and two days on."""
    today = now.astimezone(schedule.timezone).date()
    return today - timedelta(days=schedule.lookback_days + 1), today + timedelta(days=2)


def instant_span(schedule: Schedule, now: datetime) -> tuple[datetime, datetime]:
    """The instants a run asks a change calendar about: from yesterday's 00:00 to the end of tomorrow."""
    today = now.astimezone(schedule.timezone).date()
    low = datetime.combine(today - timedelta(days=1), time(0), schedule.timezone).astimezone(UTC)
    high = datetime.combine(today + timedelta(days=2), time(0), schedule.timezone).astimezone(UTC)
    return low, high


@dataclass(frozen=True)
class CalendarData:
    """What a calendar contributed when it was last read."""

    ref: str
    read_at: datetime
    dates: frozenset[date] = frozenset()
    closed: tuple[tuple[datetime, datetime], ...] = ()
    source: bytes = field(default=b"", repr=False)  # an iCalendar file's content: expanded again for later runs


@dataclass
class CalendarBook:
    """The last calendar read of each reference (kept across warm invocations) and this run's notes."""

    known: dict[str, CalendarData] = field(default_factory=dict)
    problems: dict[str, str] = field(default_factory=dict)  # ref -> what went wrong and what was used instead

    def read(self, ref: str, now: datetime, load: Callable[[], CalendarData]) -> CalendarData | None:
        """``load()`` the calendar; on failure the last one known (or None), with the problem noted."""
        try:
            data = load()
        except Exception as exc:
            previous = self.known.get(ref)
            why = f"{type(exc).__name__}: {exc}" if not isinstance(exc, CalendarError) else str(exc)
            if previous is not None:
                self.problems[ref] = (f"{why}; using the calendar read at "
                                      f"{previous.read_at:%Y-%m-%dT%H:%MZ}")
            else:
                self.problems[ref] = f"{why}; no earlier copy: its schedules act without the calendar"
            return previous
        self.known[ref] = data
        return data


def apply(schedules: Mapping[str, Schedule], data: Mapping[str, CalendarData | None]) -> dict[str, Schedule]:
    """Every schedule with its calendar's dates and CLOSED intervals filled in."""
    result: dict[str, Schedule] = {}
    for name, schedule in schedules.items():
        found = data.get(schedule.calendar) if schedule.calendar else None
        result[name] = schedule if found is None else replace(schedule, calendar_dates=found.dates,
                                                               closed=found.closed)
    return result


def references(schedules: Iterable[Schedule]) -> list[str]:
    """Every calendar the schedules name, once, in order."""
    return list(dict.fromkeys(s.calendar for s in schedules if s.calendar))


def kind(ref: str) -> str:
    return calendar_location(ref)[0]

