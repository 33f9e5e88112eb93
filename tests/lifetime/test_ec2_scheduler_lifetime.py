"""ec2_scheduler left running: every 5-minute run through both DST changes, under faults and people.

Three regions (eu-central-1 with Europe/Berlin schedules, us-east-1 with America/New_York ones, eu-west-1
that cannot be described for a while), EC2 instances on every kind of schedule (periods that add up, a
daily period starting in the spring-forward gap and one at an hour that occurs twice in autumn, an
enforced overnight schedule, a stop-only one, one with skip dates and ``stop_new_instances: false``), an
instance whose starts go back to stopped until its KMS grant is fixed, untagged instances, people starting
and stopping instances between runs, newly tagged instances, missed runs and throttling bursts.

The invariant is checked after every run against an oracle written here from the documented rule, not
with the function's own evaluation: a transition's instant is the first minute whose local wall time
reaches the period's time (found by scanning minutes), a resource runs while any period says so.

Short (``make test``): the four DST Sundays of 2026 (US and EU, spring and autumn), a day each.
Long (``make lifetime``): the same four days plus 8 weeks from 2 March 2026 (both spring changes) at a
15-minute interval.
"""

from __future__ import annotations

import datetime as dt
import json
import time as wallclock
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

import boto3
import pytest
from moto import mock_aws

from demo.harness import OpsTopicTap
from tests.lifetime.kit import (
    EC2_THROTTLING,
    Fault,
    FaultInjector,
    LambdaRuntime,
    SimClock,
    Simulation,
    is_long,
    scheduled_event,
)

UTC = dt.UTC
AMI = "ami-12c6146b"
INTERVAL = dt.timedelta(minutes=5)
EU, US, DARK = "eu-central-1", "us-east-1", "eu-west-1"  # DARK: cannot be described for a while
BERLIN, NEW_YORK = "Europe/Berlin", "America/New_York"

SCHEDULES: dict[str, Any] = {
    # Periods add up: weekdays 07-19 and every day 09-17.
    "office": {"timezone": BERLIN, "periods": [{"days": "mon-fri", "start": "07:00", "stop": "19:00"},
                                                {"days": "*", "start": "09:00", "stop": "17:00"}]},
    # Starts inside the spring-forward gap (29 March) and at a time that occurs twice (25 October).
    "early": {"timezone": BERLIN, "periods": [{"days": "*", "start": "02:30", "stop": "06:00"}]},
    "evening-off": {"timezone": BERLIN, "periods": [{"days": "*", "stop": "20:00"}]},
    "night": {"timezone": NEW_YORK, "enforced": True, "periods": [{"days": "*", "start": "22:00", "stop": "04:00"}]},
    # 01:30 occurs twice on 1 November; 02:15 does not exist on 8 March.
    "dawn": {"timezone": NEW_YORK, "periods": [{"days": "*", "start": "01:30", "stop": "03:00"},
                                               {"days": "sun", "start": "02:15", "stop": "05:00"}]},
    "ny-day": {"timezone": NEW_YORK, "stop_new_instances": False,
               "skip_dates": ["2026-03-17", "2026-04-03", "2026-11-01"],
               "periods": [{"days": "mon-fri", "start": "08:00", "stop": "18:00"}]},
}
PLACEMENT = {"office": (EU, DARK), "early": (EU,), "evening-off": (EU, DARK), "night": (US,), "dawn": (US,),
             "ny-day": (US,)}

# ---------------------------------------------------------------------------------------------- oracle


@cache
def first_instant(zone_key: str, day: dt.date, hhmm: str) -> dt.datetime:
    """The first UTC minute at which the local wall clock of ``day`` shows ``hhmm`` or later."""
    zone = ZoneInfo(zone_key)
    wanted = dt.datetime.combine(day, dt.time.fromisoformat(hhmm))
    noon = dt.datetime.combine(day, dt.time(12), tzinfo=zone)
    probe = (wanted - noon.utcoffset()).replace(tzinfo=UTC) - dt.timedelta(hours=3)  # type: ignore[operator]
    while True:
        local = probe.astimezone(zone).replace(tzinfo=None)
        if local >= wanted:
            return probe
        probe += dt.timedelta(minutes=1)


def _days(spec: str) -> set[int]:
    names = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
    if spec == "*":
        return set(range(7))
    if "-" in spec:
        a, b = spec.split("-")
        return set(range(names.index(a), names.index(b) + 1))
    return {names.index(spec)}


@dataclass(frozen=True)
class Boundary:
    at: dt.datetime
    kind: str  # "running" / "stopped"
    one_sided: bool


class Oracle:
    """The documented rule, evaluated independently of the function's code."""

    def __init__(self, raw: dict[str, Any]) -> None:
        self.raw = raw
        self.zone = raw["timezone"]
        self.skip = {dt.date.fromisoformat(d) for d in raw.get("skip_dates", [])}

    def _local_day(self, when: dt.datetime) -> dt.date:
        return when.astimezone(ZoneInfo(self.zone)).date()

    def _windows(self, day: dt.date) -> Iterator[tuple[dt.datetime, dt.datetime]]:
        for period in self.raw["periods"]:
            if "start" in period and "stop" in period and day.weekday() in _days(period["days"]) \
                    and day not in self.skip:
                end_day = day + dt.timedelta(days=1) if period["stop"] < period["start"] else day
                start = first_instant(self.zone, day, period["start"])
                end = first_instant(self.zone, end_day, period["stop"])
                if end_day in self.skip:
                    end = min(end, first_instant(self.zone, end_day, "00:00"))
                if end > start:
                    yield start, end

    def _marks(self, day: dt.date) -> Iterator[tuple[dt.datetime, str]]:
        if day in self.skip:
            yield first_instant(self.zone, day, "00:00"), "stopped"
            return
        for period in self.raw["periods"]:
            if ("start" in period) != ("stop" in period) and day.weekday() in _days(period["days"]):
                side = "start" if "start" in period else "stop"
                yield first_instant(self.zone, day, period[side]), "running" if side == "start" else "stopped"

    def desired(self, now: dt.datetime) -> str:
        today = self._local_day(now)
        if today in self.skip:
            return "stopped"
        for back in (1, 0):
            for start, end in self._windows(today - dt.timedelta(days=back)):
                if start <= now < end:
                    return "running"
        latest: tuple[dt.datetime, str] | None = None
        for back in range(9, -1, -1):
            for at, kind in self._marks(today - dt.timedelta(days=back)):
                if at <= now and (latest is None or at >= latest[0]):
                    latest = (at, kind)
        return "running" if latest is not None and latest[1] == "running" else "stopped"

    def last_transition(self, now: dt.datetime) -> dt.datetime:
        today = self._local_day(now)
        candidates: list[Boundary] = []
        for back in range(9, -1, -1):
            day = today - dt.timedelta(days=back)
            for start, end in self._windows(day):
                candidates += [Boundary(start, "running", False), Boundary(end, "stopped", False)]
            candidates += [Boundary(at, kind, True) for at, kind in self._marks(day)]
        best = now - dt.timedelta(days=9)
        for b in candidates:
            if b.at > now or b.at <= best:
                continue
            after = self.desired(b.at)
            if after == b.kind and (b.one_sided or self.desired(b.at - dt.timedelta(minutes=1)) != after):
                best = b.at
        return best

    @property
    def has_starts(self) -> bool:
        return any("start" in p for p in self.raw["periods"])


# ------------------------------------------------------------------------------------------ the world


@dataclass
class Box:
    """One EC2 instance of the simulated account."""

    id: str
    region: str
    schedule: str | None  # None: untagged (never touched by the scheduler)
    tagged_at: dt.datetime
    state_when_tagged: str
    kms: bool = False  # its starts go back to stopped while the KMS grant is missing
    manual_at: dt.datetime | None = None


class World:
    def __init__(self, clock: SimClock, sim: Simulation, faults: FaultInjector, tap: OpsTopicTap,
                 people_rate: float = 1.0) -> None:
        self.clock, self.sim, self.faults, self.tap = clock, sim, faults, tap
        self.act_chance = 0.002 * people_rate  # per instance and run; the same rate per day at any interval
        self.ec2 = {region: boto3.client("ec2", region_name=region) for region in (EU, US, DARK)}
        self.boxes: list[Box] = []
        self.oracles = {name: Oracle(raw) for name, raw in SCHEDULES.items()}
        self.grant_fixed_at: dt.datetime | None = None
        self.dark_until: dt.datetime | None = None
        self.dark_from: dt.datetime | None = None
        self.reports: list[dict[str, Any]] = []
        self.bounce_reports: dict[str, int] = {}
        self.runs = self.missed = self.failed_runs = self.retried = 0
        self.manual = self.new = self.bounces = 0
        self.calls_seen = 0
        self.seen: dict[str, tuple[str, dict[str, str]]] = {}
        self.failed_at: set[dt.datetime] = set()
        self.function_calls: list[Any] = []  # the AWS calls the function made (not the people's)
        self.touched: set[str] = set()  # every instance id the function started or stopped

    # -- people and AWS
    def launch(self, region: str, schedule: str | None, running: bool, kms: bool = False) -> Box:
        tags = [{"Key": "Name", "Value": f"sim-{schedule or 'untagged'}"}]
        if schedule is not None:
            tags.append({"Key": "Schedule", "Value": schedule})
        made = self.ec2[region].run_instances(ImageId=AMI, MinCount=1, MaxCount=1, InstanceType="t3.micro",
                                              TagSpecifications=[{"ResourceType": "instance", "Tags": tags}])
        instance_id = made["Instances"][0]["InstanceId"]
        if not running:
            self.ec2[region].stop_instances(InstanceIds=[instance_id])
        box = Box(instance_id, region, schedule, self.clock.now, "running" if running else "stopped", kms)
        self.boxes.append(box)
        return box

    def state(self, box: Box) -> str:
        return self.seen[box.id][0]

    def tags(self, box: Box) -> dict[str, str]:
        return self.seen[box.id][1]

    def people_act(self) -> None:
        rng = self.sim.rng
        for box in self.boxes:
            if box.kms or rng.random() > self.act_chance:
                continue
            current = self.snapshot()[box.id][0]
            if current == "running":
                self.ec2[box.region].stop_instances(InstanceIds=[box.id])
            else:
                self.ec2[box.region].start_instances(InstanceIds=[box.id])
            box.manual_at = self.clock.now
            self.manual += 1
            self.sim.note(f"a person {'stopped' if current == 'running' else 'started'} {box.id} ({box.schedule})")
        if rng.random() < self.act_chance:  # someone tags a new instance (often running, at any hour)
            schedule = rng.choice(["evening-off", "ny-day", "office", "night"])
            region = PLACEMENT[schedule][0]
            box = self.launch(region, schedule, running=rng.random() < 0.8)
            self.new += 1
            self.sim.note(f"a person launched {box.id} ({schedule}, {box.state_when_tagged})")

    def kms_bounces(self) -> None:
        """EC2: a start whose volume cannot be decrypted goes pending -> stopped (StateReason Client.InternalError)."""
        from moto.core import DEFAULT_ACCOUNT_ID
        from moto.ec2.models import ec2_backends
        from moto.ec2.models.instances import StateReason

        new_calls = self.function_calls[self.calls_seen:]
        self.calls_seen = len(self.function_calls)
        if self.grant_fixed_at is not None and self.clock.now >= self.grant_fixed_at:
            return
        for call in new_calls:
            if (call.service, call.operation, call.fault) != ("ec2", "StartInstances", None):
                continue
            for box in self.boxes:
                if box.kms and box.id in call.params.get("InstanceIds", []):
                    instance = ec2_backends[DEFAULT_ACCOUNT_ID][box.region].get_instance(box.id)
                    instance._state.name, instance._state.code = "stopped", 80
                    instance._reason = "Client.InternalError: Client error on launch"
                    instance.state_reason = StateReason("Client.InternalError: Client error on launch",
                                                        "Client.InternalError")
                    self.bounces += 1

    # -- the invariant
    def read_reports(self) -> list[dict[str, Any]]:
        found = self.tap.messages()
        self.reports += found
        for report in found:
            bounced = json.loads(report["metadata"]["additionalContext"].get("bounced", "{}"))
            for instance_id in bounced:
                self.bounce_reports[instance_id] = self.bounce_reports.get(instance_id, 0) + 1
        return found

    def snapshot(self) -> dict[str, tuple[str, dict[str, str]]]:
        """Every instance's state and tags, read from moto's backend (the test's view of the world; the
        function reads it through DescribeInstances)."""
        from moto.core import DEFAULT_ACCOUNT_ID
        from moto.ec2.models import ec2_backends

        found: dict[str, tuple[str, dict[str, str]]] = {}
        for region in self.ec2:
            backend = ec2_backends[DEFAULT_ACCOUNT_ID][region]
            for box in self.boxes:
                if box.region == region:
                    instance = backend.get_instance(box.id)
                    found[box.id] = (instance.state, dict(backend.tags.get(box.id, {})))
        return found

    def check(self, now: dt.datetime, run_failed: bool, reports: list[dict[str, Any]]) -> list[str]:
        problems: list[str] = []
        self.seen = self.snapshot()
        dark = self.dark_from is not None and self.dark_until is not None and self.dark_from <= now < self.dark_until
        if dark and not run_failed:
            named = [r for r in reports if "regionErrors" in r["metadata"]["additionalContext"]
                     and DARK in json.loads(r["metadata"]["additionalContext"]["regionErrors"])]
            if not named:
                problems.append(f"{DARK} could not be described but no report names it")
        for box in self.boxes:
            actual = self.state(box)
            if box.schedule is None:
                if box.manual_at is None and actual != box.state_when_tagged:
                    problems.append(f"untagged {box.id} changed to {actual}")
                continue
            problem = self._check_box(box, now, actual, dark, run_failed)
            if problem:
                problems.append(problem)
        return problems

    def _check_box(self, box: Box, now: dt.datetime, actual: str, dark: bool, run_failed: bool) -> str | None:
        oracle = self.oracles[box.schedule or ""]
        expected = oracle.desired(now)
        if actual == expected:
            return None
        raw = SCHEDULES[box.schedule or ""]
        last = oracle.last_transition(now)
        if box.manual_at is not None and box.manual_at > last and not raw.get("enforced"):
            return None  # a person changed it since the last transition
        if box.tagged_at > last and actual == box.state_when_tagged and (
                not oracle.has_starts or (expected == "stopped" and raw.get("stop_new_instances") is False)):
            return None  # first sight on a stop-only schedule / stop_new_instances false: until the next stop
        if (dark and box.region == DARK) or run_failed:
            return None  # the fault is reported (checked above / a failure record); the next run converges
        if box.kms and expected == "running" and actual == "stopped":
            return self._check_bounce(box, last)
        return (f"{box.id} ({box.schedule}, {box.region}) is {actual}, expected {expected} "
                f"(last transition {last:%Y-%m-%d %H:%M}Z, manual {box.manual_at}, tagged {box.tagged_at})")

    def _check_bounce(self, box: Box, last: dt.datetime) -> str | None:
        starts = [c for c in self.function_calls if (c.service, c.operation) == ("ec2", "StartInstances")
                  and c.fault is None and c.at is not None and c.at >= last
                  and box.id in c.params.get("InstanceIds", [])]
        # A run that failed (its state tag not written) may start it once more: count the recorded ones.
        recorded = [c for c in starts if c.at not in self.failed_at]
        if len(recorded) > 3:
            return f"{box.id}: {len(recorded)} starts since {last}: the retries are not bounded"
        if len(starts) == 0:
            return f"{box.id}: not started since the transition at {last}"
        if starts[-1].at == self.clock.now:
            return None  # it went back to stopped after this run's start: the next run sees it
        error = self.tags(box).get("ScheduleError", "")
        if not self.bounce_reports.get(box.id) or "Client.InternalError" not in error:
            return (f"{box.id} went back to stopped: not reported ({self.bounce_reports.get(box.id)}) "
                    f"or not tagged ({error!r})")
        return None


# ---------------------------------------------------------------------------------------------- the run


def _env(monkeypatch: pytest.MonkeyPatch, topic_arn: str) -> None:
    for key, value in {
        "SCHEDULES": json.dumps(SCHEDULES), "TAG_KEY": "Schedule", "MODE": "enforce",
        "REGIONS": f"{EU},{US},{DARK}", "NOTIFY_TOPIC_ARN": topic_arn, "MAX_CHANGES": "500",
        "INCLUDE_RDS": "false", "INCLUDE_ASG": "false", "SCHEDULES_PARAMETER": "none",
        "MOTO_EC2_LOAD_DEFAULT_AMIS": "false", "POWERTOOLS_LOG_LEVEL": "ERROR",
        "POWERTOOLS_METRICS_DISABLED": "true",
    }.items():
        monkeypatch.setenv(key, value)


def simulate(  # noqa: C901  the step loop of one lifetime: each branch is one kind of step, kept in order
    start: dt.datetime, end: dt.datetime, seed: int, monkeypatch: pytest.MonkeyPatch,
    *, dark_hours: float, kms_days: float, interval: dt.timedelta = INTERVAL) -> dict[str, Any]:
    began = wallclock.perf_counter()
    with mock_aws():
        tap = OpsTopicTap(US)
        _env(monkeypatch, tap.topic_arn)
        from ec2_scheduler.handler import handler

        clock = SimClock(start)
        sim = Simulation(seed=seed, clock=clock)
        with FaultInjector(clock) as faults:
            world = World(clock, sim, faults, tap, people_rate=interval / INTERVAL)
            rng = sim.rng
            for schedule, regions in PLACEMENT.items():
                for region in regions:
                    world.launch(region, schedule, running=rng.random() < 0.5)
            world.launch(EU, "office", running=False, kms=True)
            world.launch(EU, None, running=True)
            world.launch(US, None, running=False)
            span = end - start
            world.dark_from = start + span * rng.uniform(0.1, 0.5)
            world.dark_until = world.dark_from + dt.timedelta(hours=dark_hours)
            world.grant_fixed_at = start + dt.timedelta(days=kms_days)
            faults.add(Fault("ec2.DescribeInstances", "UnauthorizedOperation", regions=[DARK],
                             message="You are not authorized to perform this operation.",
                             start=world.dark_from, end=world.dark_until))
            for _ in range(max(2, int(span / dt.timedelta(days=3)))):  # throttling bursts (some outlast the retries)
                at = start + span * rng.random()
                faults.add(Fault(rng.choice(["ec2.StopInstances", "ec2.StartInstances", "ec2.CreateTags"]),
                                 start=at, times=rng.choice([1, 2, 3]), **EC2_THROTTLING))
            runtime = LambdaRuntime(handler, function_name="opsauto-ec2-scheduler")

            last_run: dict[str, Any] = {}

            def one_run() -> None:
                last_run.clear()
                world.people_act()
                if rng.random() < 0.01:  # the schedule did not fire (missed runs, caught up later)
                    world.missed += 1
                    sim.note("missed run")
                    return
                first_call = len(faults.calls)
                with faults.active():
                    invocation = runtime.invoke_async(scheduled_event(clock.now, region=US))
                new_calls = faults.calls[first_call:]
                world.function_calls += new_calls
                world.touched.update(i for c in new_calls if c.operation in ("StartInstances", "StopInstances")
                                     and c.fault is None for i in c.params.get("InstanceIds", []))
                world.kms_bounces()
                world.runs += 1
                world.retried += invocation.attempt - 1
                world.failed_runs += invocation.error is not None
                if invocation.error is not None:
                    world.failed_at.add(clock.now)
                    sim.note(f"run failed after {invocation.attempt} attempts: {invocation.error}")
                last_run.update(failed=invocation.error is not None, reports=world.read_reports())

            @sim.invariant("after every run each tagged instance is in its desired state, unless a person changed "
                           "it since the last transition (not enforced) or a reported fault stopped it")
            def desired_state() -> list[str]:
                if not last_run:
                    return []
                return world.check(clock.now, last_run["failed"], last_run["reports"])

            @sim.invariant("no untagged instance is ever changed by the scheduler")
            def untagged_untouched() -> list[str]:
                return [f"untagged {b.id} was started or stopped" for b in world.boxes
                        if b.schedule is None and b.id in world.touched and b.manual_at is None]

            sim.step("first run", one_run)
            for _ in clock.every(interval, end):
                sim.step(f"run at {clock.iso()}", one_run)
            assert world.runs > 0
            assert len(runtime.failures) == world.failed_runs  # nothing lost: every failed run is kept
            assert world.bounces >= 3 and world.bounce_reports  # the KMS instance's starts did bounce
            assert any(DARK in r["metadata"]["additionalContext"].get("regionErrors", "") for r in world.reports)
            after = [r for r in world.reports if world.dark_until is not None]
            assert after
    summary = sim.summary()
    summary.update(span_days=round((end - start) / dt.timedelta(days=1), 2), runs=world.runs, missed=world.missed,
                   failed_runs=world.failed_runs, retried_attempts=world.retried, manual_changes=world.manual,
                   new_instances=world.new, bounces=world.bounces, reports=len(world.reports),
                   instances=len(world.boxes), faults=len(faults.faults),
                   wall_seconds=round(wallclock.perf_counter() - began, 1))
    return summary


# (local zone, the Sunday of the change); make test runs a spring-forward and a fall-back night, make
# lifetime all four.
DST_SUNDAYS = [
    pytest.param(BERLIN, dt.date(2026, 3, 29), id="Berlin-spring-forward"),
    pytest.param(NEW_YORK, dt.date(2026, 11, 1), id="New_York-fall-back"),
    pytest.param(NEW_YORK, dt.date(2026, 3, 8), id="New_York-spring-forward",
                 marks=pytest.mark.skipif(not is_long(), reason="make lifetime")),
    pytest.param(BERLIN, dt.date(2026, 10, 25), id="Berlin-fall-back",
                 marks=pytest.mark.skipif(not is_long(), reason="make lifetime")),
]


@pytest.mark.parametrize(("zone", "sunday"), DST_SUNDAYS)
def test_dst_sunday_every_run(zone: str, sunday: dt.date, monkeypatch: pytest.MonkeyPatch) -> None:
    """00:30 to 09:30 local time on each DST Sunday of 2026: the gap's and the repeated hour's starts, the
    overnight stop, the morning start of the instance whose starts go back to stopped (and its retries)."""
    start = dt.datetime.combine(sunday, dt.time(0, 30), tzinfo=ZoneInfo(zone)).astimezone(UTC)
    end = dt.datetime.combine(sunday, dt.time(9, 30), tzinfo=ZoneInfo(zone)).astimezone(UTC)
    summary = simulate(start, end, seed=sunday.toordinal(), monkeypatch=monkeypatch, dark_hours=3, kms_days=2)
    print("ec2_scheduler lifetime", sunday, summary)


@pytest.mark.skipif(not is_long(), reason="8 simulated weeks: make lifetime (LIFETIME=long)")
def test_eight_weeks_across_both_spring_changes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every run of a 15-minute interval (a supported ``interval_minutes``; every period time here is on a
    quarter hour) for 8 weeks: 5,376 runs. The DST Sundays above run the default 5 minutes."""
    start = dt.datetime(2026, 3, 2, 0, 0, tzinfo=UTC)  # a Monday; US changes 8 March, EU 29 March
    summary = simulate(start, start + dt.timedelta(weeks=8), seed=20260302, monkeypatch=monkeypatch,
                       dark_hours=24, kms_days=10, interval=dt.timedelta(minutes=15))
    print("ec2_scheduler lifetime 8 weeks", summary)
