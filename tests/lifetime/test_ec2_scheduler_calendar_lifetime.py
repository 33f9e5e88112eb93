"""ec2_scheduler's calendars, groups, databases and parameter left running for weeks, under faults and people.

One account and region (moto): EC2 instances on schedules with nth weekdays, last days of the month,
months, a skip range across the year end, a yearly skip date and an iCalendar file in S3 (all-day events,
an RRULE with an EXDATE, a two-day event, a timed event that is no holiday); one on an SSM Change Calendar
(its CLOSED intervals answered at the botocore level: moto has no GetCalendarState); two on a
``retain_running`` schedule, one of which a person starts by hand before the period on some mornings; one
on a schedule that lives only in the SSM schedules parameter (changed once, then given a bad value for
hours); an Auto Scaling group; an RDS database started for its maintenance window. Faults: the calendar
file deleted for a day, GetCalendarState throttled for hours, EC2 throttling bursts (some outlast the
retries: Lambda retries the run), cold starts (the container forgets what it read).

After every run the invariants compare each resource with an oracle written here from the documented
rule, with the calendar's dates and CLOSED intervals as the world defines them (not with the function's
evaluation): a period applies on a day when every field it sets matches; skip days and CLOSED intervals
stop; a window starting inside one does not start, one running into one ends when it begins.

The span has no DST change (CET and UTC): DST is the other lifetime's and the property tests' subject.
Runs are hourly (``interval_minutes: 60``; every time here is on the hour; the database's start 15 minutes
ahead of its 03:15 window falls on the 03:00 run). Short (``make test``): 26 December 2026 to 4 January
2027. Long (``make lifetime``): 8 weeks from 23 November 2026.
"""

from __future__ import annotations

import datetime as dt
import json
import time as wallclock
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

import boto3
import pytest
from moto import mock_aws

from demo.harness import OpsTopicTap
from tests.functions.ec2_scheduler.conftest import launch_time_on_start
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
REGION = "eu-central-1"
AMI = "ami-12c6146b"
INTERVAL = dt.timedelta(minutes=60)  # interval_minutes 60; every period time here is on the hour
BERLIN = ZoneInfo("Europe/Berlin")
BUCKET, KEY = "ops-calendars", "holidays.ics"
PARAMETER = "/opsauto/schedules"
OFFICE = [{"days": "mon-fri", "start": "08:00", "stop": "18:00"}]
SCHEDULES: dict[str, Any] = {
    "office-cal": {"timezone": "Europe/Berlin", "periods": OFFICE, "skip_dates": ["2026-12-24..2027-01-01", "*-12-08"],
                   "calendar": f"s3://{BUCKET}/{KEY}"},
    "office-maint": {"timezone": "Europe/Berlin", "periods": OFFICE, "maintenance_window": True},
    "month-end": {"timezone": "Europe/Berlin", "periods": [
        {"monthdays": "L", "start": "18:00", "stop": "23:00"}, {"days": "sat#1", "start": "09:00", "stop": "12:00"},
        {"days": "mon#1", "months": "dec,jan", "start": "07:00"}, {"days": "fri", "stop": "20:00"}]},
    "freeze": {"timezone": "UTC", "calendar": "ssm:release-freeze",
               "periods": [{"days": "*", "start": "06:00", "stop": "22:00"}]},
    "retain": {"timezone": "Europe/Berlin", "retain_running": True,
               "periods": [{"days": "mon-fri", "start": "09:00", "stop": "17:00"}]},
}
PARAMETER_V1 = {"param-team": {"timezone": "Europe/Berlin", "periods": [{"days": "tue-thu", "start": "10:00",
                                                                           "stop": "16:00"}]}}
PARAMETER_V2 = {"param-team": {"timezone": "Europe/Berlin", "periods": [{"days": "mon-wed", "start": "10:00",
                                                                           "stop": "16:00"}]}}
MAINTENANCE_WINDOW = "sun:03:15-sun:04:00"  # UTC; the database runs from 03:00 (15 minutes ahead) to 04:00

HOLIDAYS_ICS = "\r\n".join([
    "BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//opsauto lifetime//holidays//EN",
    "BEGIN:VEVENT", "UID:council@example.com", "DTSTAMP:20260101T000000Z", "DTSTART;VALUE=DATE:20261202",
    "SUMMARY:Works council day", "END:VEVENT",
    "BEGIN:VEVENT", "UID:second-monday@example.com", "DTSTAMP:20260101T000000Z", "DTSTART;VALUE=DATE:20261109",
    "RRULE:FREQ=MONTHLY;BYDAY=2MO", "EXDATE;VALUE=DATE:20261214", "SUMMARY:Quiet Monday", "END:VEVENT",
    "BEGIN:VEVENT", "UID:offsite@example.com", "DTSTAMP:20260101T000000Z", "DTSTART;VALUE=DATE:20270105",
    "DTEND;VALUE=DATE:20270107", "SUMMARY:Offsite (two days)", "END:VEVENT",
    "BEGIN:VEVENT", "UID:meeting@example.com", "DTSTAMP:20260101T000000Z", "DTSTART:20261215T090000Z",
    "DTEND:20261215T100000Z", "SUMMARY:A meeting is no holiday", "END:VEVENT",
    "END:VCALENDAR", ""])
# What that file means, written out by hand: the second Mondays from its RRULE without the EXDATE, the
# one-day event and both days of the two-day one (DTEND is exclusive). The timed event is none.
ICS_DATES = {dt.date(2026, 12, 2), dt.date(2027, 1, 11), dt.date(2027, 2, 8), dt.date(2027, 1, 5),
             dt.date(2027, 1, 6)}


# ---------------------------------------------------------------------------------------------- oracle


def _last_day(day: dt.date) -> bool:
    return (day + dt.timedelta(days=1)).month != day.month


@dataclass(frozen=True)
class Window:
    on: Callable[[dt.date], bool]  # the days it applies on
    start: str | None
    stop: str | None


WEEKDAY = lambda d: d.weekday() < 5  # noqa: E731
ORACLE_PERIODS: dict[str, list[Window]] = {
    "office-cal": [Window(WEEKDAY, "08:00", "18:00")],
    "office-maint": [Window(WEEKDAY, "08:00", "18:00")],
    "month-end": [Window(_last_day, "18:00", "23:00"),
                  Window(lambda d: d.weekday() == 5 and d.day <= 7, "09:00", "12:00"),
                  Window(lambda d: d.weekday() == 0 and d.day <= 7 and d.month in (12, 1), "07:00", None),
                  Window(lambda d: d.weekday() == 4, None, "20:00")],
    "freeze": [Window(lambda d: True, "06:00", "22:00")],
    "retain": [Window(WEEKDAY, "09:00", "17:00")],
    "param-team/v1": [Window(lambda d: d.weekday() in (1, 2, 3), "10:00", "16:00")],
    "param-team/v2": [Window(lambda d: d.weekday() in (0, 1, 2), "10:00", "16:00")],
}
ZONES = {"freeze": UTC}


def _at(day: dt.date, hhmm: str, zone: dt.tzinfo) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.fromisoformat(hhmm), zone).astimezone(UTC)


class Oracle:
    def __init__(self, name: str, skip: Callable[[dt.date], bool], closed: list[tuple[dt.datetime, dt.datetime]]):
        self.periods = ORACLE_PERIODS[name]
        self.zone = ZONES.get(name.split("/")[0], BERLIN)
        self.skip, self.closed = skip, closed

    def _blackouts(self, around: dt.date) -> list[tuple[dt.datetime, dt.datetime]]:
        days = [around + dt.timedelta(days=k) for k in range(-41, 3)]
        spans = [(_at(d, "00:00", self.zone), _at(d + dt.timedelta(days=1), "00:00", self.zone))
                 for d in days if self.skip(d)]
        return sorted(spans + list(self.closed))

    def state(self, now: dt.datetime) -> str:
        today = now.astimezone(self.zone).date()
        blackouts = self._blackouts(today)
        if any(b <= now < e for b, e in blackouts):
            return "stopped"
        if any(start <= now < end for start, end in self._windows(today, blackouts)):
            return "running"
        return self._latch(today, now, blackouts)

    def _windows(self, today: dt.date, blackouts: list[tuple[dt.datetime, dt.datetime]]) -> list[
            tuple[dt.datetime, dt.datetime]]:
        found = []
        for day in (today - dt.timedelta(days=1), today):
            for w in self.periods:
                if not (w.start and w.stop and w.on(day)) or self.skip(day):
                    continue
                start = _at(day, w.start, self.zone)
                end = _at(day + dt.timedelta(days=w.stop < w.start), w.stop, self.zone)
                if not any(b <= start < e for b, e in blackouts):  # none starts on a skip day or while CLOSED
                    found.append((start, min([end] + [b for b, _ in blackouts if start < b < end])))
        return found

    def _latch(self, today: dt.date, now: dt.datetime, blackouts: list[tuple[dt.datetime, dt.datetime]]) -> str:
        """What the latest one-sided mark (or skip day / CLOSED interval begun) set."""
        marks = [(b, "stopped") for b, _ in blackouts if b <= now]
        for back in range(40, -1, -1):
            day = today - dt.timedelta(days=back)
            for w in self.periods if not self.skip(day) else []:
                if (w.start is None) != (w.stop is None) and w.on(day):
                    at = _at(day, w.start or w.stop or "", self.zone)
                    if at <= now:
                        marks.append((at, "running" if w.start else "stopped"))
        return max(marks)[1] if marks else "stopped"


def office_skip(day: dt.date) -> bool:
    return dt.date(2026, 12, 24) <= day <= dt.date(2027, 1, 1) or (day.month, day.day) == (12, 8) or day in ICS_DATES


def maintenance(now: dt.datetime) -> bool:
    """Sunday 03:00 to 04:00 UTC: from 15 minutes ahead of the window to its end."""
    return now.weekday() == 6 and dt.time(3, 0) <= now.time() < dt.time(4, 0)


# ------------------------------------------------------------------------------------------ the world


@dataclass
class World:
    clock: SimClock
    ec2: Any
    rds: Any
    autoscaling: Any
    s3: Any
    ssm: Any
    closed: list[tuple[dt.datetime, dt.datetime]] = field(default_factory=list)
    boxes: dict[str, str] = field(default_factory=dict)  # instance id -> schedule
    parameter: dict[str, Any] = field(default_factory=lambda: PARAMETER_V1)
    parameter_bad: bool = False
    cold_since_bad: bool = False
    ics_missing: bool = False
    hand_started: dict[str, dt.datetime] = field(default_factory=dict)  # retain box -> when a person started it
    hand_stop_at: dict[str, dt.datetime] = field(default_factory=dict)
    sizes_seen: set[str] = field(default_factory=set)
    runs: int = 0
    failed_runs: int = 0
    cold_starts: int = 0
    hand_starts: int = 0
    retained: int = 0
    left_alone: int = 0
    source_reports: int = 0

    def launch(self, schedule: str | None, running: bool) -> str:
        tags = [{"Key": "Schedule", "Value": schedule}] if schedule else [{"Key": "Name", "Value": "untagged"}]
        instance = self.ec2.run_instances(ImageId=AMI, MinCount=1, MaxCount=1, InstanceType="t3.micro",
                                          TagSpecifications=[{"ResourceType": "instance", "Tags": tags}])
        instance_id = str(instance["Instances"][0]["InstanceId"])
        if not running:
            self.ec2.stop_instances(InstanceIds=[instance_id])
        self.boxes[instance_id] = schedule or ""
        return instance_id

    def states(self) -> dict[str, str]:
        found = {}
        for page in self.ec2.get_paginator("describe_instances").paginate(InstanceIds=list(self.boxes)):
            for reservation in page["Reservations"]:
                for instance in reservation["Instances"]:
                    found[instance["InstanceId"]] = instance["State"]["Name"]
        return found

    def put_parameter(self, value: str) -> None:
        self.ssm.put_parameter(Name=PARAMETER, Value=value, Type="String", Overwrite=True)

    def calendar_state(self, params: dict[str, Any]) -> dict[str, Any]:
        """GetCalendarState of the change calendar the world defines."""
        at = dt.datetime.fromisoformat(params["AtTime"].replace("Z", "+00:00"))
        answer = {"State": "CLOSED" if any(b <= at < e for b, e in self.closed) else "OPEN",
                  "AtTime": params["AtTime"]}
        upcoming = sorted(x for pair in self.closed for x in pair if x > at)
        if upcoming:
            answer["NextTransitionTime"] = upcoming[0].strftime("%Y-%m-%dT%H:%M:%SZ")
        return answer

    def oracle(self, schedule: str) -> Oracle:
        if schedule in ("office-cal", "office-maint"):
            return Oracle(schedule, office_skip if schedule == "office-cal" else (lambda d: False), [])
        if schedule == "freeze":
            return Oracle(schedule, lambda d: False, self.closed)
        if schedule == "param-team":
            version = "v2" if self.parameter is PARAMETER_V2 else "v1"
            return Oracle(f"param-team/{version}", lambda d: False, [])
        return Oracle(schedule, lambda d: False, [])


# ---------------------------------------------------------------------------------------------- the run


def _people(world: World, sim: Simulation, retain_box: str) -> None:
    """A person starts the retain instance by hand on some weekday mornings (07:30-08:30 local, before the
    period's 09:00) and stops it in the evening (19:00-22:00)."""
    now = world.clock.now
    local = now.astimezone(BERLIN)
    if local.weekday() < 5 and local.time() == dt.time(7, 0) and sim.rng.random() < 0.6:
        at = now + dt.timedelta(hours=1)  # 08:00 local, an hour before the period
        world.hand_started[retain_box] = at
        world.hand_stop_at[retain_box] = at + dt.timedelta(hours=sim.rng.choice([11, 12, 13]))
    started = world.hand_started.get(retain_box)
    if started is not None and started == now:
        world.ec2.start_instances(InstanceIds=[retain_box])
        world.hand_starts += 1
        sim.note(f"a person started {retain_box} by hand")
    stop_at = world.hand_stop_at.get(retain_box)
    if stop_at is not None and stop_at <= now:
        world.ec2.stop_instances(InstanceIds=[retain_box])
        del world.hand_stop_at[retain_box], world.hand_started[retain_box]
        sim.note(f"a person stopped {retain_box}")


def _retained(world: World, now: dt.datetime, states: dict[str, str], box: str, control: str) -> list[str]:
    """The retain instances: the control one follows the schedule; the one a person started before 09:00
    keeps running past 17:00 until the person stops it."""
    want = world.oracle("retain").state(now)
    wrong = [f"retain control is {states[control]}, the rule says {want}"] if states[control] != want else []
    hand = world.hand_started.get(box)
    if hand is not None and hand < _at(now.astimezone(BERLIN).date(), "09:00", BERLIN) <= now:
        if states[box] != "running":
            wrong.append(f"the hand-started retain instance was stopped ({states[box]})")
        world.retained += want == "stopped"
    elif hand is None and states[box] != want:
        wrong.append(f"the retain instance is {states[box]}, the rule says {want}")
    return wrong


def _group(world: World) -> tuple[tuple[int, int, int], dict[str, str], list[str]]:
    group = world.autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=["web"])["AutoScalingGroups"][0]
    tags = {t["Key"]: t["Value"] for t in group.get("Tags", [])}
    members = [i["InstanceId"] for i in group.get("Instances", [])]
    return (group["MinSize"], group["DesiredCapacity"], group["MaxSize"]), tags, members


def simulate(start: dt.datetime, end: dt.datetime, seed: int,  # noqa: C901  the step loop and its invariants
             monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    began = wallclock.perf_counter()
    with mock_aws():
        tap = OpsTopicTap(REGION)
        for key, value in {
            "SCHEDULES": json.dumps(SCHEDULES), "TAG_KEY": "Schedule", "MODE": "enforce", "REGIONS": REGION,
            "NOTIFY_TOPIC_ARN": tap.topic_arn, "MAX_CHANGES": "500", "INCLUDE_RDS": "true", "INCLUDE_ASG": "true",
            "SCHEDULES_PARAMETER": PARAMETER, "MOTO_EC2_LOAD_DEFAULT_AMIS": "false", "AWS_DEFAULT_REGION": REGION,
            "POWERTOOLS_LOG_LEVEL": "ERROR", "POWERTOOLS_METRICS_DISABLED": "true",
        }.items():
            monkeypatch.setenv(key, value)
        from ec2_scheduler import aws, sources
        from ec2_scheduler.handler import handler

        # Runs are minutes apart, longer than the parameter's cache: every run reads it (the simulated clock
        # does not move Powertools' cache, so the cache is off here).
        monkeypatch.setattr(aws, "PARAMETER_MAX_AGE", 0)
        sources.reset()
        aws.reset_parameters()
        clock = SimClock(start)
        launch_time_on_start(monkeypatch, lambda: clock.now)  # retain_running reads LaunchTime, as on AWS
        sim = Simulation(seed=seed, clock=clock)
        rng = sim.rng
        with FaultInjector(clock) as faults:
            world = World(clock, boto3.client("ec2", REGION), boto3.client("rds", REGION),
                          boto3.client("autoscaling", REGION), boto3.client("s3", REGION), boto3.client("ssm", REGION))
            faults.answer("ssm.GetCalendarState", world.calendar_state)
            world.s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
            world.s3.put_object(Bucket=BUCKET, Key=KEY, Body=HOLIDAYS_ICS.encode())
            world.put_parameter(json.dumps(PARAMETER_V1))
            span = end - start
            for _ in range(max(1, span.days // 14)):  # change freezes of 4 to 30 hours
                begin = start + dt.timedelta(hours=rng.randrange(int(span / INTERVAL) - 30))
                world.closed.append((begin, begin + dt.timedelta(hours=rng.randrange(4, 31))))
            boxes = {name: world.launch(name, running=rng.random() < 0.5)
                     for name in ("office-cal", "month-end", "freeze", "param-team")}
            retain_box, retain_control = world.launch("retain", False), world.launch("retain", False)
            untagged = world.launch(None, True)
            template = world.ec2.create_launch_template(LaunchTemplateName="web", LaunchTemplateData={
                "ImageId": AMI, "InstanceType": "t3.micro"})["LaunchTemplate"]
            world.autoscaling.create_auto_scaling_group(
                AutoScalingGroupName="web", MinSize=1, DesiredCapacity=1, MaxSize=2,
                VPCZoneIdentifier=world.ec2.describe_subnets()["Subnets"][0]["SubnetId"],
                LaunchTemplate={"LaunchTemplateId": template["LaunchTemplateId"]},
                Tags=[{"Key": "Schedule", "Value": "office-cal", "PropagateAtLaunch": True}])
            world.rds.create_db_instance(
                DBInstanceIdentifier="reports-db", Engine="postgres", DBInstanceClass="db.t3.micro",
                MasterUsername="admin1", MasterUserPassword="password123", AllocatedStorage=20,
                PreferredMaintenanceWindow=MAINTENANCE_WINDOW, Tags=[{"Key": "Schedule", "Value": "office-maint"}])

            # Faults and events at seeded times.
            ics_gone = start + span * rng.uniform(0.2, 0.7)
            ics_back = ics_gone + dt.timedelta(days=1)
            throttled = start + span * rng.uniform(0.1, 0.8)
            faults.add(Fault("ssm.GetCalendarState", "ThrottlingException", start=throttled,
                             end=throttled + dt.timedelta(hours=6)))
            for _ in range(max(2, span.days // 4)):
                faults.add(Fault(rng.choice(["ec2.StopInstances", "ec2.StartInstances", "ec2.CreateTags"]),
                                 start=start + span * rng.random(), times=rng.choice([1, 3, 4]), **EC2_THROTTLING))
            first_sunday = start + dt.timedelta(days=(6 - start.weekday()) % 7 + 7 * int(span.days > 20), hours=11)
            bad_from = start + span * rng.uniform(0.5, 0.8)
            bad_until = bad_from + dt.timedelta(hours=rng.choice([6, 10, 20]))
            runtime = LambdaRuntime(handler, function_name="opsauto-ec2-scheduler")
            last: dict[str, Any] = {}

            def events() -> None:
                now = clock.now
                if world.parameter is PARAMETER_V1 and now >= first_sunday:  # both versions: stopped on Sunday
                    world.parameter = PARAMETER_V2
                    world.put_parameter(json.dumps(PARAMETER_V2))
                    sim.note("the schedules parameter changed (tue-thu to mon-wed)")
                if not world.parameter_bad and bad_from <= now < bad_until:
                    world.parameter_bad, world.cold_since_bad = True, False
                    world.put_parameter('{"param-team": {"periods": [{"days": "mon-fry", "start": "10:00"}]}}')
                    sim.note("the schedules parameter got a bad value")
                if world.parameter_bad and now >= bad_until:
                    world.parameter_bad = False
                    world.put_parameter(json.dumps(world.parameter))
                    sim.note("the schedules parameter was fixed")
                if not world.ics_missing and ics_gone <= now < ics_back:
                    world.ics_missing = True
                    world.s3.delete_object(Bucket=BUCKET, Key=KEY)
                if world.ics_missing and now >= ics_back:
                    world.ics_missing = False
                    world.s3.put_object(Bucket=BUCKET, Key=KEY, Body=HOLIDAYS_ICS.encode())
                _people(world, sim, retain_box)
                if rng.random() < 0.02:  # a cold start: the container forgets what it read
                    sources.reset()
                    aws.reset_parameters()
                    world.cold_starts += 1
                    world.cold_since_bad = world.cold_since_bad or world.parameter_bad

            def one_run() -> None:
                last.clear()
                events()
                before = len(faults.calls)
                with faults.active():
                    invocation = runtime.invoke_async(scheduled_event(clock.now, region=REGION))
                world.runs += 1
                world.failed_runs += invocation.error is not None
                last.update(result=invocation.result if invocation.error is None else None,
                            calls=faults.calls[before:])

            @sim.invariant("after every run each resource is in the state the calendar-aware rule gives (the group "
                           "scaled to 0 or restored, the database running for its maintenance window, a retained "
                           "instance left running, the parameter's schedule followed while it is known)")
            def desired() -> list[str]:
                result = last.get("result")
                if result is None:
                    return []
                now, states = clock.now, world.states()
                wrong = [f"{name} {box} is {states[box]}, the rule says {world.oracle(name).state(now)}"
                         for name, box in boxes.items()
                         if box not in result["problems"] and states[box] != world.oracle(name).state(now)]
                wrong += _retained(world, now, states, retain_box, retain_control)
                last["group"] = _group(world)
                group_want = (1, 1, 2) if world.oracle("office-cal").state(now) == "running" else (0, 0, 0)
                if last["group"][0] != group_want:
                    wrong.append(f"group web has sizes {last['group'][0]}, the rule says {group_want}")
                db = world.rds.describe_db_instances(DBInstanceIdentifier="reports-db")["DBInstances"][0]
                db_want = "available" if maintenance(now) or world.oracle("office-maint").state(now) == "running" \
                    else "stopped"
                if db["DBInstanceStatus"] != db_want:
                    wrong.append(f"reports-db is {db['DBInstanceStatus']}, the rule says {db_want}")
                return wrong

            @sim.invariant("the parameter's schedule is unknown only after a cold start while its value is bad; "
                           "the untagged instance and the group's members are never started or stopped one by one")
            def left_alone() -> list[str]:
                result = last.get("result")
                if result is None:
                    return []
                wrong = []
                if boxes["param-team"] in result["problems"]:
                    world.left_alone += 1
                    if not (world.parameter_bad and world.cold_since_bad):
                        wrong.append(f"param-team left alone without cause: {result['problems']}")
                _, tags, members = last["group"]
                if "ScheduleSizes" in tags:
                    world.sizes_seen.add(tags["ScheduleSizes"])
                touched = {i for c in last["calls"] if c.operation in ("StartInstances", "StopInstances")
                           for i in c.params.get("InstanceIds", [])}
                if touched & ({untagged} | set(members)):
                    wrong.append(f"instances outside the schedules were changed: {touched & set(members)}")
                return wrong

            @sim.invariant("every schedule source that could not be read is named in that run's report, and only "
                           "those")
            def sources_reported() -> list[str]:
                result = last.get("result")
                if result is None:
                    return []
                expected = set()
                if world.ics_missing:
                    expected.add(f"calendar s3://{BUCKET}/{KEY}")
                if world.parameter_bad:
                    expected.add(f"parameter {PARAMETER}")
                if any(c.operation == "GetCalendarState" and c.fault for c in last["calls"]):
                    expected.add("calendar ssm:release-freeze")
                found = set(result["sourceProblems"])
                world.source_reports += bool(found)
                if found != expected:
                    return [f"sources reported {sorted(found)}, expected {sorted(expected)}"]
                if found and "reportMessageId" not in result:
                    return ["a run with unreadable sources published no report"]
                return []

            sim.step("first run", one_run)
            for _ in clock.every(INTERVAL, end):
                sim.step(f"run at {clock.iso()}", one_run)
            assert world.runs > 0 and len(runtime.failures) == world.failed_runs  # nothing lost
            assert world.sizes_seen == {"min=1,desired=1,max=2"}  # recorded once, never overwritten with zeros
            assert world.source_reports >= 3 and world.hand_starts >= 1
    summary = sim.summary()
    summary.update(span_days=round(span / dt.timedelta(days=1), 1), runs=world.runs, failed_runs=world.failed_runs,
                   cold_starts=world.cold_starts, hand_starts=world.hand_starts, retained_checks=world.retained,
                   param_left_alone_runs=world.left_alone, runs_reporting_sources=world.source_reports,
                   closed_intervals=len(world.closed), faults=len(faults.faults),
                   wall_seconds=round(wallclock.perf_counter() - began, 1))
    return summary


def test_year_end_every_run(monkeypatch: pytest.MonkeyPatch) -> None:
    """26 December 2026 to 4 January 2027: the skip range across the year end, a first Saturday and a first
    Monday of January, the last day of December, a maintenance Sunday, a change freeze, the parameter
    changed and given a bad value, the calendar file gone for a day."""
    start = dt.datetime(2026, 12, 26, tzinfo=UTC)
    summary = simulate(start, start + dt.timedelta(days=9), seed=20261226, monkeypatch=monkeypatch)
    print("ec2_scheduler calendar lifetime (short)", summary)


@pytest.mark.skipif(not is_long(), reason="8 simulated weeks: make lifetime (LIFETIME=long)")
def test_eight_weeks_over_the_year_end(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every hourly run for 8 weeks from Monday 23 November 2026: 1,345 runs."""
    start = dt.datetime(2026, 11, 23, tzinfo=UTC)
    summary = simulate(start, start + dt.timedelta(weeks=8), seed=20261123, monkeypatch=monkeypatch)
    print("ec2_scheduler calendar lifetime (8 weeks)", summary)
