"""key_rotation: AWS calls of one sweep over 1,000 IAM users, per-key last use vs. the IAM credential report.

    python benchmarks/key_rotation.py

What is measured: the handler's sweep end to end on moto, over 1,000 users with one or two access keys each
(1,500 keys), once with ``CREDENTIAL_REPORT_USERS`` above the user count (baseline: one GetAccessKeyLastUsed
per key) and once below it (GenerateCredentialReport + GetCredentialReport). Every AWS call the function
makes is counted at the botocore level (the lifetime kit's recorder), by operation; the figures are the
call counts of each path and their ratio, and the wall time of each path as a ratio to the baseline, in the
same run. moto answers in process: in AWS each call is a network round trip (and IAM's per-account request
rate limits the per-key path), so the call count is the figure that carries over.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "functions"))
sys.path.insert(0, str(ROOT))

USERS = 1000
REGION = "us-east-1"
ENV = {
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
    "POWERTOOLS_TRACE_DISABLED": "1",
    "POWERTOOLS_METRICS_NAMESPACE": "opsauto-bench",
    "POWERTOOLS_SERVICE_NAME": "bench",
    "POWERTOOLS_LOG_LEVEL": "ERROR",
}


def _sweep(threshold: int) -> tuple[Counter[str], float, dict[str, Any]]:
    import boto3
    from moto import mock_aws

    from shared.clients import reset_clients
    from stacks.settings.key_rotation import KeyRotationSettings
    from tests.lifetime.kit import FakeContext, FaultInjector, scheduled_event

    with mock_aws():
        reset_clients()
        iam = boto3.client("iam", region_name=REGION)
        sns = boto3.client("sns", region_name=REGION)
        for index in range(USERS):
            name = f"user-{index:04d}"
            iam.create_user(UserName=name)
            for _ in range(2 if index % 2 else 1):
                iam.create_access_key(UserName=name)
        env = {**KeyRotationSettings(credential_report_users=threshold).function_environment(),
               "MANAGED_SECRETS": "{}",
               "NOTIFY_TOPIC_ARN": sns.create_topic(Name="opsauto-ops")["TopicArn"],
               "OWNER_TOPIC_ARN": sns.create_topic(Name="opsauto-key-owners")["TopicArn"]}
        os.environ.update(env)
        from key_rotation import handler

        with FaultInjector() as recorder:
            started = time.perf_counter()
            result = handler.handler(scheduled_event(datetime.now(UTC)), FakeContext("bench"))
            seconds = time.perf_counter() - started
        calls = Counter(f"{c.service}.{c.operation}" for c in recorder.calls)
    return calls, seconds, result


def run() -> dict[str, Any]:
    os.environ.update(ENV)
    per_key, per_key_s, per_key_result = _sweep(threshold=USERS + 1)
    report, report_s, report_result = _sweep(threshold=100)
    assert per_key_result["lastUseFrom"] == "GetAccessKeyLastUsed"
    assert report_result["lastUseFrom"] == "credential report"
    assert per_key_result["keys"] == report_result["keys"]
    total_per_key, total_report = sum(per_key.values()), sum(report.values())
    return {
        "users": USERS,
        "keys": report_result["keys"],
        "calls_per_key_path": total_per_key,
        "calls_credential_report_path": total_report,
        "calls_ratio": round(total_report / total_per_key, 3),
        "GetAccessKeyLastUsed": [per_key["iam.GetAccessKeyLastUsed"], report["iam.GetAccessKeyLastUsed"]],
        "credential_report_calls": report["iam.GenerateCredentialReport"] + report["iam.GetCredentialReport"],
        "wall_time_ratio": round(report_s / per_key_s, 3),
        "by_operation_per_key_path": dict(sorted(per_key.items())),
        "by_operation_credential_report_path": dict(sorted(report.items())),
    }


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
