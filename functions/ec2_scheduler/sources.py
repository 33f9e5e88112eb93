"""Where a run's schedules come from: ``SCHEDULES`` (cdk.json), the schedules parameter, the calendars.

Called once per invocation, before the resources are scheduled (in the hub account, where the parameter
and the calendars live). Reads only through the adapters it is given (``aws.schedules_parameter``,
``aws.Calendars``); the decisions stay in ``schedule`` / ``calendars``.

- The schedules parameter (``SCHEDULES_PARAMETER``): JSON like ``SCHEDULES``; its schedules are added to
  those of cdk.json and replace those of the same name. A value that cannot be read or fails validation
  (not JSON, a malformed schedule) is reported and the last valid value read by this container is used
  (none yet: the cdk.json schedules alone).
- Calendars: each one named by a schedule is read once per run; one that cannot be read is reported and
  the last copy read is used (none yet: the schedule acts without it; the report says which).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from functools import partial
from typing import Protocol

from ec2_scheduler import calendars as cal
from ec2_scheduler.config import Config
from ec2_scheduler.schedule import Schedule, ScheduleError, calendar_location, parse_schedules, s3_location
from shared.timeutil import iso


class CalendarReader(Protocol):
    def ics(self, bucket: str, key: str) -> bytes: ...

    def state(self, name: str, at: datetime) -> tuple[str, datetime | None]: ...


@dataclass
class Memory:
    """What this container read last (kept across warm invocations)."""

    calendars: cal.CalendarBook = field(default_factory=cal.CalendarBook)
    parameter: dict[str, tuple[datetime, dict[str, Schedule]]] = field(default_factory=dict)


MEMORY = Memory()


def reset() -> None:
    """Forget what was read (tests start a fresh moto backend per test)."""
    global MEMORY
    MEMORY = Memory()


@dataclass(frozen=True)
class Sources:
    """The schedules of this run, and what could not be read (source -> what was used instead)."""

    config: Config
    problems: dict[str, str]


def resolve(config: Config, now: datetime, read_parameter: Callable[[str], str],
            reader: Callable[[], CalendarReader]) -> Sources:
    """The config with the parameter's schedules merged in and every schedule's calendar filled in."""
    problems: dict[str, str] = {}
    schedules, bad = dict(config.schedules), dict(config.bad_schedules)
    if config.schedules_parameter:
        extra, problem = _parameter(config.schedules_parameter, now, read_parameter)
        if problem is not None:
            problems[f"parameter {config.schedules_parameter}"] = problem
        schedules.update(extra)
        bad = {name: why for name, why in bad.items() if name not in extra}
    refs = cal.references(schedules.values())
    if refs:
        MEMORY.calendars.problems.clear()
        client = reader()
        data = {ref: _current(MEMORY.calendars.read(ref, now, partial(_read, ref, schedules, now, client)),
                              schedules, now) for ref in refs}
        schedules = cal.apply(schedules, data)
        problems.update({f"calendar {ref}": why for ref, why in MEMORY.calendars.problems.items()})
    return Sources(replace(config, schedules=schedules, bad_schedules=bad), problems)


def _parameter(name: str, now: datetime, read: Callable[[str], str]) -> tuple[dict[str, Schedule], str | None]:
    try:
        text = read(name)
        good, bad = parse_schedules(json.loads(text))
        if bad:
            raise ScheduleError("; ".join(bad[key] for key in sorted(bad)))
    except Exception as exc:
        why = str(exc) if isinstance(exc, (ScheduleError, ValueError)) else f"{type(exc).__name__}: {exc}"
        last = MEMORY.parameter.get(name)
        if last is not None:
            return last[1], f"{why}; using the last valid value (read at {iso(last[0])})"
        return {}, f"{why}; no valid value read yet: the schedules of cdk.json alone are used"
    MEMORY.parameter[name] = (now, good)
    return good, None


def _ics_span(ref: str, schedules: Mapping[str, Schedule], now: datetime) -> tuple[date, date]:
    users = [s for s in schedules.values() if s.calendar == ref]
    return min(cal.span(s, now)[0] for s in users), max(cal.span(s, now)[1] for s in users)


def _current(data: cal.CalendarData | None, schedules: Mapping[str, Schedule],
             now: datetime) -> cal.CalendarData | None:
    """An iCalendar file kept from an earlier run, expanded again over this run's dates."""
    if data is None or data.read_at == now or not data.source:
        return data
    first, last = _ics_span(data.ref, schedules, now)
    return replace(data, dates=cal.ics_skip_dates(data.source, first, last))


def _read(ref: str, schedules: Mapping[str, Schedule], now: datetime, client: CalendarReader) -> cal.CalendarData:
    users = [s for s in schedules.values() if s.calendar == ref]
    kind, name = calendar_location(ref)
    if kind == "s3":
        first, last = _ics_span(ref, schedules, now)
        content = client.ics(*s3_location(ref))
        return cal.CalendarData(ref, now, dates=cal.ics_skip_dates(content, first, last), source=content)
    low = min(cal.instant_span(s, now)[0] for s in users)
    high = max(cal.instant_span(s, now)[1] for s in users)
    return cal.CalendarData(ref, now, closed=cal.closed_intervals(lambda at: client.state(name, at), low, high))
