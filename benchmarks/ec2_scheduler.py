"""ec2_scheduler at scale: 5,000 tagged instances across 3 schedules in one region, in moto.

Counts the AWS API calls (per operation, through a botocore ``before-call`` hook on the function's
clients) and times three runs:

- ``half``: a run at which 2,500 instances must change (schedule ``early`` stops its instances);
- ``none``: the next run, five minutes later, which must change nothing;
- ``baseline``: the same 2,500 changes (``early`` starting them again the next morning) done the naive
  way, one StartInstances/StopInstances and one CreateTags call per instance, after the same describe.

Targets (issue 4): ``none`` makes only the paginated describe calls; ``half`` makes no more than the
describe pages + one start/stop call per batch of 50 (+ a few CreateTags of up to 500 ids to record
the state, + one SNS Publish of the report).

    python benchmarks/ec2_scheduler.py            # 5,000 instances
    python benchmarks/ec2_scheduler.py 1000       # fewer, for a quick look
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "functions"), str(ROOT)]
from benchmarks.offline import use_offline_aws  # noqa: E402

use_offline_aws("ec2_scheduler", MOTO_EC2_LOAD_DEFAULT_AMIS="false")

import boto3  # noqa: E402
from moto import mock_aws  # noqa: E402

REGION = "us-east-1"
# Instances per run_instances call. moto pages DescribeInstances by reservation (AWS by instance), so
# one instance per reservation gives the page count AWS would give: ceil(instances / 1000).
RESERVATION_SIZE = 1
SCHEDULES = {
    # 2026-11-30 is a Monday. "early" stops at 17:00 UTC, the others later.
    "early": {"timezone": "UTC", "periods": [{"days": "mon-fri", "start": "07:00", "stop": "17:00"}]},
    "late": {"timezone": "Europe/Berlin", "periods": [{"days": "mon-fri", "start": "08:00", "stop": "20:00"}]},
    "night": {"timezone": "America/New_York", "periods": [{"days": "*", "start": "05:00", "stop": "03:00"}]},
}
SETUP_TIME = "2026-11-30T16:00:00Z"  # every instance inside its period: all running
HALF_TIME = "2026-11-30T17:05:00Z"  # "early" stops: half of them
NONE_TIME = "2026-11-30T17:10:00Z"  # nothing to do
BASELINE_TIME = "2026-12-01T07:05:00Z"  # "early" starts again: the same half, done one by one


class Context:
    function_name = "bench"
    function_version = "$LATEST"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:bench"
    memory_limit_in_mb = 256
    aws_request_id = "bench"

    def get_remaining_time_in_millis(self) -> int:
        return 900_000


class CallCounter:
    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def __call__(self, model: Any, **_: Any) -> None:
        self.counts[model.name] += 1

    def attach(self, made: Any) -> Any:
        if not getattr(made, "_bench_counted", False):
            made.meta.events.register("before-call", self)
            made._bench_counted = True
        return made

    def take(self) -> dict[str, int]:
        taken = dict(sorted(self.counts.items()))
        self.counts.clear()
        return taken


def speed_up_moto_tag_lookup() -> None:
    """moto looks up each instance's tags by scanning every tag of the account (quadratic in the number
    of instances: describing 5,000 instances takes minutes). Index the lookup by resource id, with the
    same results; the API calls counted are unchanged. Only moto's own cost is removed."""
    from moto.ec2.models.tags import EC2_PREFIX_TO_RESOURCE, TagBackend, get_prefix

    original = TagBackend.describe_tags

    def describe_tags(self: Any, filters: dict[str, list[str]] | None = None) -> list[dict[str, str]]:
        if filters and set(filters) == {"resource-id"} and len(filters["resource-id"]) == 1:
            resource_id = filters["resource-id"][0]
            if "*" not in resource_id and "?" not in resource_id:
                kind = EC2_PREFIX_TO_RESOURCE.get(get_prefix(resource_id), "")
                return [{"resource_id": resource_id, "key": key, "value": value, "resource_type": kind}
                        for key, value in self.tags.get(resource_id, {}).items()]
        return original(self, filters)  # type: ignore[no-any-return]

    TagBackend.describe_tags = describe_tags  # type: ignore[method-assign]


def create_instances(count: int) -> tuple[list[str], float]:
    ec2 = boto3.client("ec2", REGION)
    names = list(SCHEDULES)
    # Half on "early", a quarter on each of the others.
    plan = [("early", count // 2), ("late", count // 4), ("night", count - count // 2 - count // 4)]
    assert {name for name, _ in plan} == set(names)
    started = time.perf_counter()
    ids: list[str] = []
    for schedule, total in plan:
        remaining = total
        while remaining:
            chunk = min(RESERVATION_SIZE, remaining)
            response = ec2.run_instances(
                ImageId="ami-12c6146b", MinCount=chunk, MaxCount=chunk, InstanceType="t3.micro",
                TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "Schedule", "Value": schedule}]}],
            )
            ids.extend(i["InstanceId"] for i in response["Instances"])
            remaining -= chunk
    return ids, time.perf_counter() - started


def naive_run(now_text: str, counter: CallCounter) -> None:
    """The baseline: same describe and decisions, then one call per instance to act and one to record."""
    from ec2_scheduler.aws import Ec2
    from ec2_scheduler.config import Config
    from ec2_scheduler.plan import TagKeys, format_state_tag, plan
    from shared.timeutil import parse_time

    config = Config.from_env()
    now = parse_time(now_text)
    ec2 = Ec2(REGION)
    resources = list(ec2.describe(config.tag_key))
    decided = plan(resources, config.schedules, config.bad_schedules, TagKeys(config.tag_key), now)
    for decision in decided.changes:
        ids = [decision.resource.id]
        if decision.action == "start":
            ec2.client.start_instances(InstanceIds=ids)
        else:
            ec2.client.stop_instances(InstanceIds=ids)
        ec2.client.create_tags(Resources=ids, Tags=[{"Key": "ScheduleState",
                                                     "Value": format_state_tag(decision.desired, now)}])  # type: ignore[arg-type]


def run(count: int = 5000) -> dict[str, Any]:
    speed_up_moto_tag_lookup()
    with mock_aws():
        sns = boto3.client("sns", REGION)
        os.environ.update({
            "SCHEDULES": json.dumps(SCHEDULES), "TAG_KEY": "Schedule", "MODE": "enforce", "REGIONS": REGION,
            "MAX_CHANGES": str(count), "INCLUDE_RDS": "true", "INCLUDE_ASG": "true", "SCHEDULES_PARAMETER": "none",
            "NOTIFY_TOPIC_ARN": sns.create_topic(Name="ops")["TopicArn"],
        })
        _, create_seconds = create_instances(count)

        from ec2_scheduler import aws as adapter
        from ec2_scheduler.handler import handler
        from shared import clients

        clients.reset_clients()
        counter = CallCounter()
        original = clients.client

        def counted(service: str, region: str | None = None) -> Any:
            return counter.attach(original(service, region))

        adapter.client = counted  # type: ignore[assignment]
        import ec2_scheduler.runner as runner_module

        runner_module.client = counted  # type: ignore[assignment]

        def invoke(at: str) -> tuple[dict[str, Any], dict[str, int], float]:
            event = {"version": "0", "id": "bench", "detail-type": "Scheduled Event", "source": "aws.scheduler",
                     "time": at, "region": REGION, "resources": [], "detail": {}}
            started = time.perf_counter()
            summary = handler(event, Context())
            return summary, counter.take(), time.perf_counter() - started

        setup, _, setup_seconds = invoke(SETUP_TIME)  # first sight: records every instance as running
        half, half_calls, half_seconds = invoke(HALF_TIME)
        none, none_calls, none_seconds = invoke(NONE_TIME)

        started = time.perf_counter()
        naive_run(BASELINE_TIME, counter)
        baseline_seconds = time.perf_counter() - started
        baseline_calls = counter.take()

    describe_pages = -(-count // 1000)
    changed = len(half["stopped"]) + len(half["started"])
    batches = -(-changed // 50)
    return {
        "instances": count,
        "create_seconds": round(create_seconds, 2),
        "setup_run": {"recorded": setup["recorded"], "seconds": round(setup_seconds, 2)},
        "half": {"changed": changed, "calls": half_calls, "total_calls": sum(half_calls.values()),
                 "seconds": round(half_seconds, 2)},
        "none": {"changed": len(none["stopped"]) + len(none["started"]), "calls": none_calls,
                 "total_calls": sum(none_calls.values()), "seconds": round(none_seconds, 2)},
        "baseline_one_call_per_instance": {"calls": baseline_calls, "total_calls": sum(baseline_calls.values()),
                                           "seconds": round(baseline_seconds, 2)},
        "targets": {
            "describe_pages": describe_pages,
            "start_stop_batches": batches,
            "none_only_describes": set(none_calls) <= {"DescribeInstances", "DescribeDBInstances",
                                                       "DescribeDBClusters"},
            "describe_instances_calls_eq_pages": none_calls.get("DescribeInstances") == describe_pages,
            "half_start_stop_calls_le_batches": half_calls.get("StopInstances", 0)
            + half_calls.get("StartInstances", 0) <= batches,
        },
    }


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
    figures = run(count)
    print(f"ec2_scheduler benchmark: {figures['instances']} instances, 3 schedules, moto, region {REGION}")
    print(f"  creating the instances in moto: {figures['create_seconds']} s; first run (records all): "
          f"{figures['setup_run']['seconds']} s")
    for key, label in (("half", "run changing half"), ("none", "run changing none"),
                       ("baseline_one_call_per_instance", "baseline, one call per instance (same half)")):
        item = figures[key]
        print(f"  {label}: {item['total_calls']} API calls in {item['seconds']} s")
        for operation, number in item["calls"].items():
            print(f"      {operation:<22} {number}")
    targets = figures["targets"]
    print(f"  targets: describe pages {targets['describe_pages']} (+1 each for RDS instances/clusters), "
          f"start/stop batches of 50: {targets['start_stop_batches']}; "
          f"no-change run only describes: {targets['none_only_describes']}; "
          f"start/stop calls <= batches: {targets['half_start_stop_calls_le_batches']}")


if __name__ == "__main__":
    main()
