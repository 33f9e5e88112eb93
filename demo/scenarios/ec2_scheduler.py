"""ec2_scheduler: a simulated workday in Europe/Berlin for 20 tagged instances and an Auto Scaling group.

12 instances follow ``office`` (Mon-Fri 08:00-18:00 Berlin), 8 follow ``support`` (Mon-Fri 07:00-18:00
Berlin), the Auto Scaling group ``web`` (2 instances) follows ``office`` as one resource (scaled to 0 outside
the period, its sizes restored inside), and 2 untagged instances stand by. The function (loaded from the
synthesized asset, its environment from the template with SCHEDULES overridden) runs at 07:55, 08:05 and 18:05
local time on Monday 30 November 2026 (the Scheduler event's ``time`` in UTC: Berlin is UTC+1 in winter). Then
a person starts one office instance by hand in the evening (left alone: the schedule is not enforced), and a
run in report mode the next morning shows what it would start without touching anything.
"""

from __future__ import annotations

import json
import os
from typing import Any
from unittest import mock

from demo.harness import ROOT, DemoContext, DemoFailure

TITLE = "20 instances and an Auto Scaling group, 2 Berlin schedules: a workday at 07:55, 08:05, 18:05 local"

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


def _web_group(ctx: DemoContext) -> Any:
    """An Auto Scaling group of 2 (min 2, max 4) with the schedule tag, its instances not tagged one by one."""
    ec2, autoscaling = ctx.client("ec2"), ctx.client("autoscaling")
    template = ec2.create_launch_template(
        LaunchTemplateName="web", LaunchTemplateData={"ImageId": "ami-12c6146b", "InstanceType": "t3.micro"}
    )["LaunchTemplate"]
    autoscaling.create_auto_scaling_group(
        AutoScalingGroupName="web", MinSize=2, MaxSize=4, DesiredCapacity=2,
        VPCZoneIdentifier=ec2.describe_subnets()["Subnets"][0]["SubnetId"],
        LaunchTemplate={"LaunchTemplateId": template["LaunchTemplateId"]},
        Tags=[{"Key": "Schedule", "Value": "office", "PropagateAtLaunch": False}],
    )
    return autoscaling


def _sizes(autoscaling: Any) -> tuple[int, int, int]:
    group = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=["web"])["AutoScalingGroups"][0]
    return group["MinSize"], group["DesiredCapacity"], group["MaxSize"]


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
    autoscaling = _web_group(ctx)
    ctx.say(f"launched 12 'office' + 8 'support' instances (all running), 2 untagged and the Auto Scaling "
            f"group 'web' (min 2, desired 2, max 4, tagged 'office'), in {ctx.region}")

    env = ctx.function_env("ec2_scheduler", SCHEDULES=json.dumps(SCHEDULES))
    expected = {  # the group counts as one start or stop
        "07:55": ({"started": 0, "stopped": 13}, {"office": 0, "support": 8}, (0, 0, 0)),
        "08:05": ({"started": 13, "stopped": 0}, {"office": 12, "support": 8}, (2, 2, 4)),
        "18:05": ({"started": 0, "stopped": 21}, {"office": 0, "support": 0}, (0, 0, 0)),
    }
    for local, utc in STEPS:
        result = ctx.invoke("ec2_scheduler", _event(utc, ctx.region), env)
        states = _states(ec2, everyone)
        running = {"office": _count(states, office, "running"), "support": _count(states, support, "running")}
        sizes = _sizes(autoscaling)
        ctx.say(f"{local} Berlin ({utc}): started {len(result['started'])}, stopped {len(result['stopped'])} "
                f"-> running: office {running['office']}/12, support {running['support']}/8, "
                f"untagged {_count(states, untagged, 'running')}/2; web min/desired/max {sizes}")
        want_changes, want_running, want_sizes = expected[local]
        if {"started": len(result["started"]), "stopped": len(result["stopped"])} != want_changes \
                or running != want_running or sizes != want_sizes:
            raise DemoFailure(f"{local}: expected {want_changes}, running {want_running} and web {want_sizes}, "
                              f"got {result} and web {sizes}")
        if _count(states, untagged, "running") != 2:
            raise DemoFailure("an untagged instance was touched")

    ec2.start_instances(InstanceIds=[office[0]])
    result = ctx.invoke("ec2_scheduler", _event("2026-11-30T19:00:00Z", ctx.region), env)
    if result["stopped"] or _states(ec2, [office[0]])[office[0]] != "running":
        raise DemoFailure("a manual start outside the period was not left alone")
    ctx.say(f"20:00 Berlin: {office[0]} started by hand -> left running (schedule not enforced)")

    report_env = {**env, "MODE": "report"}
    result = ctx.invoke("ec2_scheduler", _event("2026-12-01T07:05:00Z", ctx.region), report_env)
    if len(result["wouldStart"]) != 20 or result["started"] or _sizes(autoscaling) != (0, 0, 0):
        raise DemoFailure(f"report mode: expected 20 would-starts (19 instances and the group), got {result}")
    ctx.say(f"Tue 08:05 Berlin in report mode: would start {len(result['wouldStart'])}, started nothing")

    reports = ctx.reports()
    titles = [r["content"]["title"] for r in reports if r.get("metadata", {}).get("additionalContext", {})
              .get("automation") == "ec2_scheduler"]
    for title in titles:
        ctx.say(f"report: {title}")
    if len(titles) != 4:
        raise DemoFailure(f"expected 4 action reports (3 steps + report mode), got {titles}")
    return ("07:55 stopped 12 + web, 08:05 started 12 + web (sizes restored), 18:05 stopped 20 + web; manual start "
            "left alone; report mode inert")
