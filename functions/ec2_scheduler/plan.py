"""Per-resource decisions: what a run does with each tagged instance, and why. Pure: no boto3.

State tracking (documented in docs/ec2_scheduler.md): after acting on (or acknowledging) a resource
the scheduler writes the tag ``<TAG_KEY>State=<running|stopped>@<UTC time of the run>`` on it. A run
acts only when the schedule's desired state differs from that recorded state, so

- a missed run is caught up at the next run (the recorded state is still the old one);
- a manual start outside the period is left alone (desired == recorded), unless the schedule is
  ``enforced``, which compares the desired state with the actual state instead;
- an event older than the recorded time (a late retry) changes nothing.

Override: ``<TAG_KEY>Override=running-until=2026-12-01T18:00Z`` (or ``stopped-until=...``) keeps the
resource in that state until the given time (ISO 8601; ``Z`` or an offset; no zone means UTC). While it
holds it is enforced; afterwards the schedule applies again.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Literal

from ec2_scheduler.schedule import RUNNING, STOPPED, Schedule, State, desired_state
from shared.timeutil import iso, parse_time

Kind = Literal["ec2", "rds-instance", "rds-cluster"]
Action = Literal["start", "stop", "none", "skip", "problem"]

EC2_TRANSITIONAL = ("pending", "stopping", "shutting-down", "terminated")
_STATE_TAG_RE = re.compile(r"^(running|stopped)@(.+)$")
_OVERRIDE_RE = re.compile(r"^(running|stopped)-until=(.+)$")
KIND_LABEL = {"ec2": "EC2 instance", "rds-instance": "RDS DB instance", "rds-cluster": "RDS DB cluster"}


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

    @property
    def current(self) -> State | None:
        """running / stopped, or None while the resource is in any other state."""
        if self.kind == "ec2":
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


@dataclass(frozen=True)
class Recorded:
    state: State
    at: datetime


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

    @property
    def changes_state(self) -> bool:
        return self.action in ("start", "stop")


def format_state_tag(state: State, now: datetime) -> str:
    return f"{state}@{iso(now)}"


def parse_state_tag(value: str | None) -> Recorded | None:
    """``running@2026-11-30T07:00:00Z`` → Recorded; None when absent or unreadable."""
    if not value:
        return None
    match = _STATE_TAG_RE.match(value.strip())
    if not match:
        return None
    try:
        return Recorded(match.group(1), parse_time(match.group(2)))  # type: ignore[arg-type]
    except ValueError:
        return None


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


def decide(
    resource: Resource,
    schedules: Mapping[str, Schedule],
    bad_schedules: Mapping[str, str],
    keys: TagKeys,
    now: datetime,
) -> Decision:
    """What to do with ``resource`` at ``now``."""
    name = resource.tags.get(keys.schedule, "").strip()
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
    current = resource.current
    if current is None:
        return Decision(resource, "skip", f"state {resource.status!r}: left alone until it settles", name)

    recorded = parse_state_tag(resource.tags.get(keys.state))
    if recorded is not None and recorded.at > now:
        return Decision(resource, "skip", f"a later run ({iso(recorded.at)}) already handled it; "
                        f"this event ({iso(now)}) is stale", name)

    override_text = resource.tags.get(keys.override, "").strip()
    if override_text:
        try:
            override = parse_override(override_text)
        except ValueError as exc:
            return Decision(resource, "problem", f"tag {keys.override}: {exc}", name)
        if now < override.until:
            reason = f"override {keys.override}={override_text}"
            return _converge(resource, schedule, override.state, current, recorded, reason)

    desired = _desired_state(schedule, now)
    if recorded is None:
        if desired.state == STOPPED and current == RUNNING and not schedule.stop_new_instances:
            return Decision(resource, "none", f"new: {desired.reason}; stop_new_instances is off, so it keeps "
                            "running until the next stop", name, STOPPED, record=STOPPED)
        return _converge(resource, schedule, desired.state, current, None, f"new: {desired.reason}")
    if schedule.enforced:
        return _converge(resource, schedule, desired.state, current, recorded, f"enforced: {desired.reason}")
    if recorded.state == desired.state:
        if current != desired.state:
            return Decision(resource, "none", f"{current} by hand while the schedule wants {desired.state}: "
                            "left alone (schedule not enforced)", name, desired.state)
        return Decision(resource, "none", "in sync", name, desired.state)
    return _converge(resource, schedule, desired.state, current, recorded, desired.reason)


def _converge(
    resource: Resource,
    schedule: Schedule,
    desired: State,
    current: State,
    recorded: Recorded | None,
    reason: str,
) -> Decision:
    record = desired if recorded is None or recorded.state != desired else None
    if current == desired:
        text = reason if record else "in sync"
        return Decision(resource, "none", text, schedule.name, desired, record=record)
    if desired == RUNNING:
        return Decision(resource, "start", reason, schedule.name, desired, record=record or desired)
    hibernate = False
    if schedule.hibernate and resource.kind == "ec2":
        if resource.hibernation_configured:
            hibernate = True
        else:
            reason += "; not configured for hibernation: normal stop"
    return Decision(resource, "stop", reason, schedule.name, desired, record=record or desired, hibernate=hibernate)


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
