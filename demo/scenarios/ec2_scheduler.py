"""ec2_scheduler: a simulated workday in Europe/Berlin for 20 tagged instances on two schedules.

12 instances follow ``office`` (Mon-Fri 08:00-18:00 Berlin), 8 follow ``support`` (Mon-Fri 07:00-18:00
Berlin), and 2 untagged instances stand by. The function (loaded from the synthesized asset, its
environment from the template with SCHEDULES overridden) runs at 07:55, 08:05 and 18:05 local time on
Monday 30 November 2026 (the Scheduler event's ``time`` in UTC: Berlin is UTC+1 in winter). Then a person
starts one office instance by hand in the evening (left alone: the schedule is not enforced), and a run in
report mode the next morning shows what it would start without touching anything.
"""

from __future__ import annotations

import json
import os
from typing import Any
from unittest import mock

from demo.harness import ROOT, DemoContext, DemoFailure

TITLE = "20 instances, 2 Berlin schedules: a workday at 07:55, 08:05, 18:05 local"

SCHEDULES = {
    "office": {"timezone": "Europe/Berlin", "periods": [{"days": "mon-fri", "start": "08:00", "stop": "18:00"}]},
    "support": {"timezone": "Europe/Berlin", "periods": [{"days": "mon-fri", "start": "07:00", "stop": "18:00"}]},
}
STEPS = [("07:55", "2026-11-30T06:55:00Z"), ("08:05", "2026-11-30T07:05:00Z"), ("18:05", "2026-11-30T17:05:00Z")]


def _event(time: str, region: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((ROOT / "tests" / "events" / "ec2_scheduler" / "scheduler_invoke.json")
                                       .read_text().replace("us-east-1", region))
    event["time"] = time
    return event


def _launch(ec2: Any, count: int, schedule: str | None, name: str) -> list[str]:
    tags = [{"Key": "Name", "Value": name}] + ([{"Key": "Schedule", "Value": schedule}] if schedule else [])
    response = ec2.run_instances(ImageId="ami-12c6146b", MinCount=count, MaxCount=count, InstanceType="t3.micro",
                                 TagSpecifications=[{"ResourceType": "instance", "Tags": tags}])
    return [item["InstanceId"] for item in response["Instances"]]


def _states(ec2: Any, ids: list[str]) -> dict[str, str]:
    found = {}
    for reservation in ec2.describe_instances(InstanceIds=ids)["Reservations"]:
        for instance in reservation["Instances"]:
            found[instance["InstanceId"]] = instance["State"]["Name"]
    return found


def _count(states: dict[str, str], ids: list[str], state: str) -> int:
    return sum(1 for i in ids if states[i] == state)


def run(ctx: DemoContext) -> str:
    with mock.patch.dict(os.environ, {"MOTO_EC2_LOAD_DEFAULT_AMIS": "false"}):
        return _run(ctx)


def _run(ctx: DemoContext) -> str:
    ec2 = ctx.client("ec2")
    office = _launch(ec2, 12, "office", "office-desktop")
    support = _launch(ec2, 8, "support", "support-desk")
    untagged = _launch(ec2, 2, None, "build-server")
    everyone = office + support + untagged
    ctx.say(f"launched 12 'office' + 8 'support' instances (all running) and 2 untagged, in {ctx.region}")

    env = ctx.function_env("ec2_scheduler", SCHEDULES=json.dumps(SCHEDULES))
    expected = {
        "07:55": ({"started": 0, "stopped": 12}, {"office": 0, "support": 8}),
        "08:05": ({"started": 12, "stopped": 0}, {"office": 12, "support": 8}),
        "18:05": ({"started": 0, "stopped": 20}, {"office": 0, "support": 0}),
    }
    for local, utc in STEPS:
        result = ctx.invoke("ec2_scheduler", _event(utc, ctx.region), env)
        states = _states(ec2, everyone)
        running = {"office": _count(states, office, "running"), "support": _count(states, support, "running")}
        ctx.say(f"{local} Berlin ({utc}): started {len(result['started'])}, stopped {len(result['stopped'])} "
                f"-> running: office {running['office']}/12, support {running['support']}/8, "
                f"untagged {_count(states, untagged, 'running')}/2")
        want_changes, want_running = expected[local]
        if {"started": len(result["started"]), "stopped": len(result["stopped"])} != want_changes \
                or running != want_running:
            raise DemoFailure(f"{local}: expected {want_changes} and running {want_running}, got {result}")
        if _count(states, untagged, "running") != 2:
            raise DemoFailure("an untagged instance was touched")

    ec2.start_instances(InstanceIds=[office[0]])
    result = ctx.invoke("ec2_scheduler", _event("2026-11-30T19:00:00Z", ctx.region), env)
    if result["stopped"] or _states(ec2, [office[0]])[office[0]] != "running":
        raise DemoFailure("a manual start outside the period was not left alone")
    ctx.say(f"20:00 Berlin: {office[0]} started by hand -> left running (schedule not enforced)")

    report_env = {**env, "MODE": "report"}
    result = ctx.invoke("ec2_scheduler", _event("2026-12-01T07:05:00Z", ctx.region), report_env)
    if len(result["wouldStart"]) != 19 or result["started"]:
        raise DemoFailure(f"report mode: expected 19 would-starts, got {result}")
    ctx.say(f"Tue 08:05 Berlin in report mode: would start {len(result['wouldStart'])}, started nothing")

    reports = ctx.reports()
    titles = [r["content"]["title"] for r in reports if r.get("metadata", {}).get("additionalContext", {})
              .get("automation") == "ec2_scheduler"]
    for title in titles:
        ctx.say(f"report: {title}")
    if len(titles) != 4:
        raise DemoFailure(f"expected 4 action reports (3 steps + report mode), got {titles}")
    return "07:55 stopped 12, 08:05 started 12, 18:05 stopped 20; manual start left alone; report mode inert"
