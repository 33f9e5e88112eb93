"""Per-resource decisions: what a run does with each tagged instance, and why. Pure: no boto3.

State tracking (documented in docs/ec2_scheduler.md): after acting on (or acknowledging) a resource
the scheduler writes the tag ``<TAG_KEY>State=<running|stopped>@<UTC time of the run>`` on it. A run
acts only when the schedule's desired state differs from that recorded state, so

- a missed run is caught up at the next run (the recorded state is still the old one);
- a manual start outside the period is left alone (desired == recorded), unless the schedule is
  ``enforced``, which compares the desired state with the actual state instead;
- an event older than the recorded time (a late retry) changes nothing.

``retain_running``: an EC2 instance already running at a period's start that was started before it (its
``LaunchTime``, the time of its last start, is earlier: by hand, not by this scheduler) is recorded as
``running@<time>;retained`` and is not stopped at that period's end.

Auto Scaling groups carrying the tag are scheduled as one resource: stopped means min, desired and max
0; the sizes it had are kept in ``<TAG_KEY>Sizes=min=1,desired=2,max=4`` on the group and restored at the
next start. Its instances are never scheduled one by one.

RDS databases on a schedule with ``maintenance_window: true`` run from ``MAINTENANCE_LEAD`` before their
preferred maintenance window until its end (``schedule.maintenance_state``).

Override: ``<TAG_KEY>Override=running-until=2026-12-01T18:00Z`` (or ``stopped-until=...``) keeps the
resource in that state until the given time (ISO 8601; ``Z`` or an offset; no zone means UTC). While it
holds it is enforced; afterwards the schedule applies again.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import lru_cache
from typing import Literal

from ec2_scheduler.schedule import (
    RUNNING,
    STOPPED,
    Desired,
    Schedule,
    State,
    desired_state,
    maintenance_state,
    parse_maintenance_window,
)
from shared.timeutil import iso, parse_time

Kind = Literal["ec2", "rds-instance", "rds-cluster", "asg"]
Action = Literal["start", "stop", "none", "skip", "problem"]

EC2_TRANSITIONAL = ("pending", "stopping", "shutting-down", "terminated")
_STATE_TAG_RE = re.compile(r"^(running|stopped)@([^;]+)(;retained)?$")
_SIZES_RE = re.compile(r"^min=(\d+),desired=(\d+),max=(\d+)$")
_OVERRIDE_RE = re.compile(r"^(running|stopped)-until=(.+)$")
_ERROR_TAG_RE = re.compile(r"^start-bounced;attempts=(\d+);at=([^;]+);(gave up;)?reason=(.*)$")
# EC2 StateReason codes of a start that failed after StartInstances succeeded (the instance went from
# pending back to stopped): a missing KMS grant for an encrypted volume, capacity, a missing snapshot.
LAUNCH_FAILURE_CODES = frozenset({
    "Client.InternalError", "Server.InternalError", "Server.InsufficientInstanceCapacity",
    "Client.InvalidSnapshot.NotFound", "Client.VolumeLimitExceeded",
})
MAX_START_ATTEMPTS = 3  # starts per transition before a start that does not hold is given up
KIND_LABEL = {"ec2": "EC2 instance", "rds-instance": "RDS DB instance", "rds-cluster": "RDS DB cluster",
              "asg": "Auto Scaling group"}


@dataclass(frozen=True)
class Sizes:
    """An Auto Scaling group's min, desired and max capacity."""

    min: int
    desired: int
    max: int

    @property
    def zero(self) -> bool:
        return self.min == self.desired == self.max == 0

    def tag(self) -> str:
        return f"min={self.min},desired={self.desired},max={self.max}"

    def label(self) -> str:
        return f"min {self.min}, desired {self.desired}, max {self.max}"


ZERO = Sizes(0, 0, 0)


def parse_sizes(value: str | None) -> Sizes | None:
    """``min=1,desired=2,max=4`` → Sizes; None when absent or unreadable."""
    match = _SIZES_RE.match(value.strip()) if value else None
    if not match:
        return None
    low, desired, high = (int(group) for group in match.groups())
    return Sizes(low, desired, high) if low <= desired <= high else None


@dataclass(frozen=True)
class Resource:
    """A tagged EC2 instance, RDS DB instance or RDS/Aurora cluster, as described."""

    kind: Kind
    id: str
    region: str
    status: str  # EC2 state name or RDS status, as AWS reports it
    tags: Mapping[str, str]
    arn: str = ""
    hibernation_configured: bool = False
    asg_group: str | None = None
    read_replica_of: str | None = None
    cluster: str | None = None  # an RDS instance that belongs to a cluster
    state_reason: str = ""  # EC2 StateReason.Code (why it last changed state), e.g. Client.UserInitiatedShutdown
    state_message: str = ""
    maintenance_window: str = ""  # RDS PreferredMaintenanceWindow, e.g. sun:05:00-sun:05:30 (UTC)
    launched: datetime | None = None  # EC2 LaunchTime: when the instance was last started
    sizes: Sizes | None = None  # an Auto Scaling group's sizes

    @property
    def current(self) -> State | None:
        """running / stopped, or None while the resource is in any other state."""
        if self.kind in ("ec2", "asg"):
            return {"running": RUNNING, "stopped": STOPPED}.get(self.status)
        return {"available": RUNNING, "stopped": STOPPED}.get(self.status)

    @property
    def name(self) -> str:
        return self.tags.get("Name", "")

    @property
    def label(self) -> str:
        extra = f" ({self.name})" if self.name else ""
        return f"{self.id}{extra} [{self.region}]"


@dataclass(frozen=True)
class TagKeys:
    schedule: str = "Schedule"

    @property
    def state(self) -> str:
        return f"{self.schedule}State"

    @property
    def override(self) -> str:
        return f"{self.schedule}Override"

    @property
    def error(self) -> str:
        return f"{self.schedule}Error"

    @property
    def sizes(self) -> str:
        return f"{self.schedule}Sizes"


@dataclass(frozen=True)
class Recorded:
    state: State
    at: datetime
    retained: bool = False  # running at a period's start without this scheduler starting it (retain_running)


@dataclass(frozen=True)
class StartError:
    """``<TAG_KEY>Error``: starts of the current transition that went back to stopped."""

    attempts: int
    at: datetime
    reason: str
    gave_up: bool


@dataclass(frozen=True)
class Override:
    state: State
    until: datetime


@dataclass(frozen=True)
class Decision:
    resource: Resource
    action: Action
    reason: str
    schedule: str = ""
    desired: State | None = None
    record: State | None = None  # write <TAG_KEY>State=<record>@<now> after acting (None: leave the tag)
    hibernate: bool = False
    error_tag: str | None = None  # write <TAG_KEY>Error=<error_tag> (a start that did not hold)
    bounced: str | None = None  # why the last start went back to stopped
    clear_error: bool = False  # delete <TAG_KEY>Error: the resource runs as it should
    retained: bool = False  # record running@<now>;retained: started by hand before the period's start
    sizes: Sizes | None = None  # an Auto Scaling group: the sizes to set

    @property
    def changes_state(self) -> bool:
        return self.action in ("start", "stop")


def format_state_tag(state: State, now: datetime, retained: bool = False) -> str:
    return f"{state}@{iso(now)}{';retained' if retained else ''}"


def parse_state_tag(value: str | None) -> Recorded | None:
    """``running@2026-11-30T07:00:00Z`` (``;retained``) → Recorded; None when absent or unreadable."""
    if not value:
        return None
    match = _STATE_TAG_RE.match(value.strip())
    if not match:
        return None
    try:
        return Recorded(match.group(1), parse_time(match.group(2)), bool(match.group(3)))  # type: ignore[arg-type]
    except ValueError:
        return None


def format_error_tag(attempts: int, now: datetime, reason: str, gave_up: bool) -> str:
    """``start-bounced;attempts=2;at=2026-11-30T07:15:00Z;reason=Client.InternalError: ...`` (max 256)."""
    text = f"start-bounced;attempts={attempts};at={iso(now)};{'gave up;' if gave_up else ''}reason={reason}"
    return text[:256]


def parse_error_tag(value: str | None) -> StartError | None:
    match = _ERROR_TAG_RE.match(value.strip()) if value else None
    if not match:
        return None
    try:
        at = parse_time(match.group(2))
    except ValueError:
        return None
    return StartError(int(match.group(1)), at, match.group(4), bool(match.group(3)))


def parse_override(value: str) -> Override:
    """``running-until=2026-12-01T18:00Z`` → Override; ValueError with the reason when malformed."""
    match = _OVERRIDE_RE.match(value.strip())
    if not match:
        raise ValueError(f"{value!r} is not '<running|stopped>-until=<ISO 8601 time>'")
    try:
        until = parse_time(match.group(2))
    except ValueError:
        raise ValueError(f"{value!r}: {match.group(2)!r} is not an ISO 8601 time") from None
    return Override(match.group(1), until)  # type: ignore[arg-type]


# Every resource on a schedule shares its desired state at a moment: evaluate it once per run.
_desired_state = lru_cache(maxsize=256)(desired_state)


def _guard(resource: Resource, name: str, schedules: Mapping[str, Schedule], bad_schedules: Mapping[str, str],
           keys: TagKeys) -> Decision | Schedule:
    """The resource's schedule, or the decision that leaves it alone (and why)."""
    if not name:
        return Decision(resource, "problem", f"tag {keys.schedule} is empty")
    if resource.asg_group:
        return Decision(resource, "skip", f"member of Auto Scaling group {resource.asg_group!r}: "
                        "the group manages its instances", name)
    if resource.read_replica_of:
        return Decision(resource, "problem", f"read replica of {resource.read_replica_of!r}: RDS cannot stop "
                        "read replicas", name)
    if resource.cluster:
        return Decision(resource, "problem", f"member of DB cluster {resource.cluster!r}: tag the cluster "
                        "instead; its instances cannot be stopped one by one", name)
    if name in bad_schedules:
        return Decision(resource, "problem", f"schedule {name!r} is malformed: {bad_schedules[name]}", name)
    schedule = schedules.get(name)
    if schedule is None:
        return Decision(resource, "problem", f"unknown schedule {name!r}", name)
    if resource.current is None:
        return Decision(resource, "skip", f"state {resource.status!r}: left alone until it settles", name)
    return schedule


def decide(
    resource: Resource,
    schedules: Mapping[str, Schedule],
    bad_schedules: Mapping[str, str],
    keys: TagKeys,
    now: datetime,
) -> Decision:
    """What to do with ``resource`` at ``now``."""
    decision = _decide(resource, schedules, bad_schedules, keys, now)
    if resource.kind == "asg" and decision.changes_state:
        return _group_sizes(decision, keys)
    return decision


def _group_sizes(decision: Decision, keys: TagKeys) -> Decision:
    """An Auto Scaling group's stop sets min, desired and max to 0; its start restores the recorded sizes."""
    if decision.action == "stop":
        return replace(decision, sizes=ZERO, reason=f"{decision.reason}; sets {ZERO.label()}")
    restore = parse_sizes(decision.resource.tags.get(keys.sizes))
    if restore is None or restore.zero:
        return Decision(decision.resource, "problem", f"no sizes to restore in tag {keys.sizes} "
                        "(min=N,desired=N,max=N): set the group's sizes by hand, or that tag",
                        decision.schedule, decision.desired)
    return replace(decision, sizes=restore, reason=f"{decision.reason}; restores {restore.label()}")


def _decide(
    resource: Resource,
    schedules: Mapping[str, Schedule],
    bad_schedules: Mapping[str, str],
    keys: TagKeys,
    now: datetime,
) -> Decision:
    name = resource.tags.get(keys.schedule, "").strip()
    guarded = _guard(resource, name, schedules, bad_schedules, keys)
    if isinstance(guarded, Decision):
        return guarded
    schedule = guarded
    current = resource.current
    assert current is not None  # _guard skips resources in other states

    recorded = parse_state_tag(resource.tags.get(keys.state))
    if recorded is not None and recorded.at > now:
        return Decision(resource, "skip", f"a later run ({iso(recorded.at)}) already handled it; "
                        f"this event ({iso(now)}) is stale", name)

    override = _override(resource, schedule, keys, current, now)
    if isinstance(override, Decision):
        return override
    override_end = override

    desired = _desired(resource, schedule, now)
    if recorded is None:
        return _first_sight(resource, schedule, desired, current, now)
    since = max(desired.since, override_end) if override_end is not None else desired.since
    if recorded.at < since:  # a transition (or an override's end) the scheduler has not acted on yet
        retained = _retain(resource, schedule, desired, current, recorded)
        if retained is not None:
            return retained
        return _converge(resource, schedule, desired.state, current, desired.reason, record=True)
    bounced = _bounce(resource, schedule, keys, recorded, since, now)
    if bounced is not None:
        return bounced
    if schedule.enforced and recorded.state == desired.state:
        return _converge(resource, schedule, desired.state, current, f"enforced: {desired.reason}",
                         record=False)
    if current != desired.state:
        why = ("left running at first sight until the next transition" if recorded.state != desired.state
               else "left alone (schedule not enforced)")
        return Decision(resource, "none", f"{current} by hand or kept while the schedule wants "
                        f"{desired.state}: {why}", name, desired.state)
    clear = keys.error in resource.tags and current == RUNNING
    return Decision(resource, "none", "in sync", name, desired.state, clear_error=clear)


def _desired(resource: Resource, schedule: Schedule, now: datetime) -> Desired:
    """The schedule's desired state; for a database on a ``maintenance_window`` schedule, with its window."""
    desired = _desired_state(schedule, now)
    if schedule.maintenance_window and resource.kind in ("rds-instance", "rds-cluster"):
        window = parse_maintenance_window(resource.maintenance_window)
        if window is not None:
            return maintenance_state(desired, window, now)
    return desired


def _retain(resource: Resource, schedule: Schedule, desired: Desired, current: State,
            recorded: Recorded) -> Decision | None:
    """``retain_running``: an instance started before the period's start (``LaunchTime``), not by this
    scheduler: recorded as retained; not stopped at the next stop (recorded stopped, so it is left running
    as a resource started by hand). A start of the scheduler's own whose record failed has a later
    ``LaunchTime`` and is not retained."""
    if not schedule.retain_running or current != RUNNING:
        return None
    started_before = resource.launched is not None and resource.launched < desired.since
    if desired.state == RUNNING and recorded.state == STOPPED and started_before:
        return Decision(resource, "none", f"{desired.reason}; already running (started by hand): retain_running "
                        "keeps it running past the period's end", schedule.name, RUNNING, record=RUNNING,
                        retained=True)
    if desired.state == STOPPED and recorded.state == RUNNING and recorded.retained:
        return Decision(resource, "none", f"{desired.reason}; retain_running: it was started by hand before the "
                        "period's start, so it keeps running", schedule.name, STOPPED, record=STOPPED)
    return None


def _override(resource: Resource, schedule: Schedule, keys: TagKeys, current: State,
              now: datetime) -> Decision | datetime | None:
    """While ``<TAG_KEY>Override`` holds: its decision. Afterwards: the instant it ended (a transition)."""
    text = resource.tags.get(keys.override, "").strip()
    if not text:
        return None
    try:
        override = parse_override(text)
    except ValueError as exc:
        return Decision(resource, "problem", f"tag {keys.override}: {exc}", schedule.name)
    if now < override.until:
        return _converge(resource, schedule, override.state, current, f"override {keys.override}={text}",
                         record=True)
    return override.until


def _first_sight(resource: Resource, schedule: Schedule, desired: Desired, current: State, now: datetime) -> Decision:
    """A resource without a state record. A schedule that only stops (or only starts) acts on it at its
    next transition; otherwise it is brought to the desired state, except that ``stop_new_instances:
    false`` leaves a running one running until the next stop."""
    keep = None
    if desired.state == STOPPED and current == RUNNING:
        if not schedule.has_starts:
            keep = "the schedule only stops: it is stopped at the next stop"
        elif not schedule.stop_new_instances:
            keep = "stop_new_instances is off: it keeps running until the next stop"
    elif desired.state == RUNNING and current == STOPPED and not schedule.has_stops:
        keep = "the schedule only starts: it is started at the next start"
    if keep is not None:
        return Decision(resource, "none", f"new: {desired.reason}; {keep}", schedule.name, desired.state,
                        record=current)
    return _converge(resource, schedule, desired.state, current, f"new: {desired.reason}", record=True)


def _bounce(resource: Resource, schedule: Schedule, keys: TagKeys, recorded: Recorded, since: datetime,
            now: datetime) -> Decision | None:
    """A start this scheduler made for the current transition that went back to stopped by itself
    (``StateReason`` a launch failure such as a missing KMS grant): retried up to ``MAX_START_ATTEMPTS``
    starts, then left stopped until the next transition; each one reported and noted in ``<tag>Error``."""
    if not (resource.kind == "ec2" and recorded.state == RUNNING and resource.current == STOPPED
            and resource.state_reason in LAUNCH_FAILURE_CODES):
        return None
    previous = parse_error_tag(resource.tags.get(keys.error))
    attempts = 1
    if previous is not None and previous.at >= since:
        if previous.gave_up:
            return Decision(resource, "none", f"start failed {previous.attempts} times ({previous.reason}); left "
                            "stopped until the next transition", schedule.name, RUNNING)
        attempts = previous.attempts + 1
    why = f"{resource.state_reason}: {resource.state_message}".strip(": ")
    gave_up = attempts >= MAX_START_ATTEMPTS
    tag = format_error_tag(attempts, now, why, gave_up)
    text = (f"started at {iso(recorded.at)} but it went back to stopped ({why}); {attempts} of "
            f"{MAX_START_ATTEMPTS} starts failed")
    if gave_up:
        return Decision(resource, "none", f"{text}: gave up until the next transition", schedule.name, RUNNING,
                        error_tag=tag, bounced=why)
    return Decision(resource, "start", f"{text}: starting it again", schedule.name, RUNNING, record=RUNNING,
                    error_tag=tag, bounced=why)


def _converge(
    resource: Resource,
    schedule: Schedule,
    desired: State,
    current: State,
    reason: str,
    *,
    record: bool,
) -> Decision:
    """Bring ``resource`` to ``desired``; ``record`` writes the state tag even when nothing changes."""
    if current == desired:
        return Decision(resource, "none", reason if record else "in sync", schedule.name, desired,
                        record=desired if record else None)
    if desired == RUNNING:
        return Decision(resource, "start", reason, schedule.name, desired, record=desired)
    hibernate = False
    if schedule.hibernate and resource.kind == "ec2":
        if resource.hibernation_configured:
            hibernate = True
        else:
            reason += "; not configured for hibernation: normal stop"
    return Decision(resource, "stop", reason, schedule.name, desired, record=desired, hibernate=hibernate)


@dataclass
class Plan:
    decisions: list[Decision] = field(default_factory=list)

    def by_action(self, action: Action) -> list[Decision]:
        return [d for d in self.decisions if d.action == action]

    @property
    def changes(self) -> list[Decision]:
        return [d for d in self.decisions if d.changes_state]

    @property
    def tag_only(self) -> list[Decision]:
        return [d for d in self.decisions if d.action == "none" and d.record is not None]

    @property
    def problems(self) -> list[Decision]:
        return self.by_action("problem")


def plan(
    resources: Iterable[Resource],
    schedules: Mapping[str, Schedule],
    bad_schedules: Mapping[str, str],
    keys: TagKeys,
    now: datetime,
) -> Plan:
    return Plan([decide(resource, schedules, bad_schedules, keys, now) for resource in resources])


def chunks(items: list[str], size: int) -> list[list[str]]:
    return [items[i : i + size] for i in range(0, len(items), size)]
