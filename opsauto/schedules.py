"""``opsauto schedules``: check, explain and find the users of ec2_scheduler's schedules.

    opsauto schedules validate FILE              a schedules JSON file (as in cdk.json), with the function's parser
    opsauto schedules describe NAME [--from DATE] [--days N] [--file FILE]
                                                 the transitions of a schedule, local time and UTC
    opsauto schedules usage [--json]             which resources carry which schedule tag (read-only)

Schedules come from the app's cdk.json (``automations.ec2_scheduler.schedules``) unless ``--file`` is given.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3

from ec2_scheduler.schedule import Schedule, ScheduleError, parse_schedules, timeline
from opsauto import render
from opsauto.project import OpsautoError, load_project


def _schedules_from(file: Path | None, project_dir: Path | None) -> Any:
    if file is not None:
        try:
            return json.loads(file.read_text())
        except (OSError, ValueError) as exc:
            raise OpsautoError(f"{file}: {exc}") from None
    settings = load_project(project_dir).settings.automations.ec2_scheduler
    return json.loads(settings.schedules_json())


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
    """Every EC2 instance and RDS database tagged ``tag_key`` in ``regions``, read-only."""
    rows = []
    for region in regions:
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


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="opsauto schedules", description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n".join(__doc__.splitlines()[2:]))
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("validate", help="check a schedules JSON file with the function's own parser")
    p.add_argument("file", type=Path)
    p = sub.add_parser("describe", help="a schedule's transitions in local time and UTC")
    p.add_argument("name")
    p.add_argument("--from", dest="start", type=date.fromisoformat, default=None, help="local date (default today)")
    p.add_argument("--days", type=int, default=7)
    p.add_argument("--file", type=Path)
    p = sub.add_parser("usage", help="which resources use which schedule (from their tags, read-only)")
    p.add_argument("--json", action="store_true")
    for p in sub.choices.values():
        p.add_argument("--region")
        p.add_argument("--profile")
        p.add_argument("--project-dir", type=Path)
    args = parser.parse_args(argv)
    if args.command == "validate":
        good, bad = validate(_schedules_from(args.file, None))
        for name in sorted(good):
            print(f"ok    {name}")
        for name, reason in sorted(bad.items()):
            print(f"error {name}: {reason}")
        return 1 if bad else 0
    if args.command == "describe":
        good, bad = validate(_schedules_from(args.file, args.project_dir))
        if args.name not in good:
            raise OpsautoError(bad.get(args.name) or f"no schedule {args.name!r}; schedules: {', '.join(sorted(good))}")
        schedule = good[args.name]
        first = args.start or datetime.now(schedule.timezone).date()
        rows = describe(schedule, first, max(1, args.days))
        print(f"{args.name} ({schedule.timezone.key}), {first} + {args.days} days")
        print(render.table(["local", "UTC", "state", "why"], [[r["local"], r["utc"], r["state"], r["reason"]]
                                                               for r in rows]))
        return 0
    project = load_project(args.project_dir)
    settings = project.settings.automations.ec2_scheduler
    from opsauto.aws import Aws

    session = Aws(boto3.Session(profile_name=args.profile, region_name=args.region)).session
    regions = list(settings.regions) or [str(session.region_name)]
    rows = usage(session, settings.tag_key, regions, set(settings.schedules))
    print(render.as_json(rows) if args.json else render.table(
        ["kind", "region", "id", "state", "schedule", "note"],
        [[r["kind"], r["region"], r["id"], r["state"], r["schedule"], r["note"]] for r in rows]))
    return 0
