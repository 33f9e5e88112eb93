"""``opsauto schedules``: check, explain and find the users of ec2_scheduler's schedules.

    opsauto schedules validate FILE | --parameter NAME
                                                 a schedules JSON file (as in cdk.json) or the value of the SSM
                                                 parameter the function reads, with the function's parser
    opsauto schedules describe NAME [--from DATE] [--days N] [--file FILE | --parameter NAME] [--no-calendar]
                                                 the transitions of a schedule, local time and UTC, with the
                                                 skip dates of its calendar (read-only)
    opsauto schedules usage [--json]             which instances, databases and Auto Scaling groups carry which
                                                 schedule tag (read-only)

Schedules come from the app's cdk.json (``automations.ec2_scheduler.schedules``), with ``--parameter`` the
parameter's schedules added as the function adds them, or from ``--file`` alone.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from ec2_scheduler import calendars
from ec2_scheduler.schedule import (
    Schedule,
    ScheduleError,
    calendar_location,
    parse_schedules,
    s3_location,
    timeline,
)
from opsauto import render
from opsauto.project import OpsautoError, load_project
from shared.timeutil import iso, parse_time


def _schedules_from(file: Path | None, project_dir: Path | None) -> Any:
    if file is not None:
        try:
            return json.loads(file.read_text())
        except (OSError, ValueError) as exc:
            raise OpsautoError(f"{file}: {exc}") from None
    settings = load_project(project_dir).settings.automations.ec2_scheduler
    return json.loads(settings.schedules_json())


def parameter_value(session: boto3.Session, name: str) -> Any:
    """The schedules parameter's value as JSON (what the function reads)."""
    try:
        text = session.client("ssm").get_parameter(Name=name)["Parameter"]["Value"]
    except (ClientError, BotoCoreError) as exc:
        raise OpsautoError(f"parameter {name}: {exc}") from None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise OpsautoError(f"parameter {name}: not JSON ({exc})") from None


def with_calendar(session: boto3.Session, schedule: Schedule, first: date, last: date) -> Schedule:
    """``schedule`` with its calendar's skip dates / CLOSED intervals from ``first`` to ``last`` filled in."""
    if not schedule.calendar:
        return schedule
    ref = schedule.calendar
    kind, name = calendar_location(ref)
    if kind == "s3":
        bucket, key = s3_location(ref)
        content = session.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
        data = calendars.CalendarData(ref, datetime.now(UTC), dates=calendars.ics_skip_dates(content, first, last))
    else:
        ssm = session.client("ssm")

        def state_at(at: datetime) -> tuple[str, datetime | None]:
            answer = ssm.get_calendar_state(CalendarNames=[name], AtTime=iso(at))
            upcoming = answer.get("NextTransitionTime")
            return answer["State"], parse_time(upcoming) if upcoming else None

        low = datetime.combine(first, time(0), schedule.timezone).astimezone(UTC)
        high = datetime.combine(last + timedelta(days=1), time(0), schedule.timezone).astimezone(UTC)
        data = calendars.CalendarData(ref, datetime.now(UTC), closed=calendars.closed_intervals(
            state_at, low, high, max_calls=4 * (last - first).days + 8))
    return calendars.apply({schedule.name: schedule}, {ref: data})[schedule.name]


def validate(raw: Any) -> tuple[dict[str, Schedule], dict[str, str]]:
    try:
        return parse_schedules(raw)
    except ScheduleError as exc:
        raise OpsautoError(f"schedules: {exc}") from None


def describe(schedule: Schedule, first: date, days: int) -> list[dict[str, str]]:
    """The schedule's transitions from local date ``first`` for ``days`` days."""
    found = []
    for item in timeline(schedule, first, first + timedelta(days=days - 1)):
        local = item.at.astimezone(schedule.timezone)
        found.append({"local": local.strftime("%a %Y-%m-%d %H:%M %Z"), "utc": item.at.astimezone(UTC).strftime(
            "%Y-%m-%dT%H:%MZ"), "state": str(item.state), "reason": item.reason})
    return found


def usage(session: boto3.Session, tag_key: str, regions: Sequence[str], known: set[str]) -> list[dict[str, str]]:
    """Every EC2 instance, RDS database and Auto Scaling group tagged ``tag_key`` in ``regions``, read-only."""
    rows = []
    for region in regions:
        autoscaling = session.client("autoscaling", region_name=region)
        for group_page in autoscaling.get_paginator("describe_auto_scaling_groups").paginate(
                Filters=[{"Name": "tag-key", "Values": [tag_key]}]):
            for group in group_page["AutoScalingGroups"]:
                tags = {t["Key"]: t["Value"] for t in group.get("Tags", [])}
                state = f"min {group['MinSize']}, desired {group['DesiredCapacity']}, max {group['MaxSize']}"
                rows.append(_usage_row("asg", region, group["AutoScalingGroupName"], state, tags.get(tag_key, ""),
                                       known))
        ec2 = session.client("ec2", region_name=region)
        for page in ec2.get_paginator("describe_instances").paginate(
                Filters=[{"Name": "tag-key", "Values": [tag_key]}]):
            for reservation in page["Reservations"]:
                for instance in reservation["Instances"]:
                    tags = {t["Key"]: t["Value"] for t in instance.get("Tags", [])}
                    rows.append(_usage_row("ec2", region, instance["InstanceId"], instance["State"]["Name"],
                                           tags.get(tag_key, ""), known))
        rds = session.client("rds", region_name=region)
        for db_page in rds.get_paginator("describe_db_instances").paginate():
            for db in db_page["DBInstances"]:
                tags = {t["Key"]: t["Value"] for t in db.get("TagList", [])}
                if tag_key in tags:
                    rows.append(_usage_row("rds", region, db["DBInstanceIdentifier"], db["DBInstanceStatus"],
                                           tags[tag_key], known))
    return rows


def _usage_row(kind: str, region: str, ident: str, state: str, schedule: str, known: set[str]) -> dict[str, str]:
    return {"kind": kind, "region": region, "id": ident, "state": state, "schedule": schedule,
            "note": "" if schedule in known else "no such schedule: left alone"}


def _session(args: argparse.Namespace) -> boto3.Session:
    from opsauto.aws import Aws

    session: boto3.Session = Aws(boto3.Session(profile_name=args.profile, region_name=args.region)).session
    return session


def _merged(args: argparse.Namespace, project_dir: Path | None) -> tuple[dict[str, Schedule], dict[str, str]]:
    """The schedules as the function sees them: cdk.json's (or --file's), and --parameter's over them."""
    good, bad = validate(_schedules_from(args.file, project_dir))
    if getattr(args, "parameter", None):
        extra, extra_bad = validate(parameter_value(_session(args), args.parameter))
        if extra_bad:
            raise OpsautoError(f"parameter {args.parameter} fails validation (the function keeps its last valid "
                               f"value): {'; '.join(extra_bad.values())}")
        good.update(extra)
        bad = {name: why for name, why in bad.items() if name not in extra}
    return good, bad


def _validate(args: argparse.Namespace) -> int:
    if (args.file is None) == (args.parameter is None):
        raise OpsautoError("validate needs a FILE or --parameter NAME")
    raw = _schedules_from(args.file, None) if args.file is not None else parameter_value(_session(args),
                                                                                         args.parameter)
    good, bad = validate(raw)
    for name in sorted(good):
        print(f"ok    {name}")
    for name, reason in sorted(bad.items()):
        print(f"error {name}: {reason}")
    return 1 if bad else 0


def _describe(args: argparse.Namespace) -> int:
    good, bad = _merged(args, args.project_dir)
    if args.name not in good:
        raise OpsautoError(bad.get(args.name) or f"no schedule {args.name!r}; schedules: {', '.join(sorted(good))}")
    schedule = good[args.name]
    first = args.start or datetime.now(schedule.timezone).date()
    days = max(1, args.days)
    note = ""
    if schedule.calendar and not args.no_calendar:
        try:
            schedule = with_calendar(_session(args), schedule, first - timedelta(days=1), first + timedelta(days=days))
            note = f", calendar {schedule.calendar}"
        except (ClientError, BotoCoreError, calendars.CalendarError, OpsautoError) as exc:
            note = f", calendar {schedule.calendar} NOT read ({exc}): without it"
    rows = describe(schedule, first, days)
    print(f"{args.name} ({schedule.timezone.key}), {first} + {days} days{note}")
    print(render.table(["local", "UTC", "state", "why"], [[r["local"], r["utc"], r["state"], r["reason"]]
                                                           for r in rows]))
    return 0


def _usage(args: argparse.Namespace) -> int:
    project = load_project(args.project_dir)
    settings = project.settings.automations.ec2_scheduler
    session = _session(args)
    known = set(settings.schedules)
    if settings.schedules_parameter:
        known |= set(validate(parameter_value(session, settings.schedules_parameter))[0])
    regions = list(settings.regions) or [str(session.region_name)]
    rows = usage(session, settings.tag_key, regions, known)
    print(render.as_json(rows) if args.json else render.table(
        ["kind", "region", "id", "state", "schedule", "note"],
        [[r["kind"], r["region"], r["id"], r["state"], r["schedule"], r["note"]] for r in rows]))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="opsauto schedules", description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n".join(__doc__.splitlines()[2:]))
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("validate", help="check a schedules JSON file or parameter with the function's own parser")
    p.add_argument("file", type=Path, nargs="?")
    p.add_argument("--parameter", help="the SSM parameter the function reads (schedules_parameter)")
    p = sub.add_parser("describe", help="a schedule's transitions in local time and UTC")
    p.add_argument("name")
    p.add_argument("--from", dest="start", type=date.fromisoformat, default=None, help="local date (default today)")
    p.add_argument("--days", type=int, default=7)
    source = p.add_mutually_exclusive_group()
    source.add_argument("--file", type=Path)
    source.add_argument("--parameter", help="add the schedules of this SSM parameter, as the function does")
    p.add_argument("--no-calendar", action="store_true", help="do not read the schedule's calendar")
    p = sub.add_parser("usage", help="which resources use which schedule (from their tags, read-only)")
    p.add_argument("--json", action="store_true")
    for p in sub.choices.values():
        p.add_argument("--region")
        p.add_argument("--profile")
        p.add_argument("--project-dir", type=Path)
    args = parser.parse_args(argv)
    commands = {"validate": _validate, "describe": _describe, "usage": _usage}
    return commands[args.command](args)
