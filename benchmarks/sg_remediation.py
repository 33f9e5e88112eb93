"""sg_remediation: the function's own time for one security group with 60 ingress rules, on moto.

    python benchmarks/sg_remediation.py

What is measured: the handler end to end (parse a CloudTrail-shaped AuthorizeSecurityGroupIngress event,
describe the group and its rules, decide, revoke by rule id, publish the action report) for a group with
60 ingress rules of which 30 are world-open on ports outside the allowed ``80,443,8000-8080`` (revoked),
10 are world-open on allowed ports (kept) and 20 come from narrower CIDRs (kept). Median of ``RUNS`` runs,
each on a fresh group.

Baseline, in the same run: the same AWS calls the function must make (DescribeSecurityGroups,
DescribeSecurityGroupRules, RevokeSecurityGroupIngress with the 30 rule ids, SNS Publish) issued directly with
boto3 against the same moto backend. The difference is the function's own overhead (parsing, policy,
report building, Powertools logging and metrics).

moto answers in process, so these figures are CPU time of the code path, not EC2 latency: in AWS each of
the four calls adds a network round trip (tens of milliseconds). What dominates the time from a bad change
to its revocation is neither: it is CloudTrail delivering the event to EventBridge (docs/sg_remediation.md).
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "functions"))
sys.path.insert(0, str(ROOT))

RUNS = 9
REGION = "us-east-1"
BAD_PORTS = list(range(1000, 1030))  # 30 world-open rules to revoke
ENV = {
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "AWS_SESSION_TOKEN": "bench",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
    "POWERTOOLS_TRACE_DISABLED": "1",
    "POWERTOOLS_SERVICE_NAME": "sg_remediation",
    "POWERTOOLS_METRICS_NAMESPACE": "opsauto-bench",
    "POWERTOOLS_LOG_LEVEL": "WARNING",
    "MODE": "enforce",
    "ALLOWED_PUBLIC_PORTS": "80,443,8000-8080",
    "EXEMPT_TAG": "AutoRemediate=false",
    "MAX_CHANGES": "50",
    "REGIONS": "own",
}


class _Context:
    function_name = "opsauto-sg-remediation"
    function_version = "$LATEST"
    invoked_function_arn = f"arn:aws:lambda:{REGION}:123456789012:function:opsauto-sg-remediation"
    memory_limit_in_mb = 256
    aws_request_id = "00000000-0000-4000-8000-000000000000"
    log_group_name = "/aws/lambda/opsauto-sg-remediation"
    log_stream_name = "bench"

    def get_remaining_time_in_millis(self) -> int:
        return 300_000


def _permissions() -> list[dict[str, Any]]:
    """60 ingress rules: 30 world-open to revoke, 10 world-open allowed, 20 from narrower sources."""
    world = {"IpRanges": [{"CidrIp": "0.0.0.0/0"}], "Ipv6Ranges": [{"CidrIpv6": "::/0"}]}
    perms: list[dict[str, Any]] = [
        {"IpProtocol": "tcp", "FromPort": port, "ToPort": port, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}
        for port in BAD_PORTS
    ]
    # 5 allowed ports, each from 0.0.0.0/0 and ::/0: 10 rules kept
    perms += [{"IpProtocol": "tcp", "FromPort": port, "ToPort": port, **world} for port in (80, 443, 8000, 8001, 8002)]
    # 20 narrower sources: kept
    perms.append({"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22,
                  "IpRanges": [{"CidrIp": f"203.0.113.{n}/32"} for n in range(14)]})
    perms.append({"IpProtocol": "tcp", "FromPort": 3306, "ToPort": 3306,
                  "Ipv6Ranges": [{"CidrIpv6": f"2001:db8:{n}::/48"} for n in range(6)]})
    return perms


def _event(group_id: str, rule_ids: list[str]) -> dict[str, Any]:
    event = json.loads((ROOT / "tests/events/sg_remediation/authorize_ingress_world.json").read_text())
    event["detail"]["requestParameters"]["groupId"] = group_id
    items = event["detail"]["responseElements"]["securityGroupRuleSet"]["items"]
    template = items[0]
    event["detail"]["responseElements"]["securityGroupRuleSet"]["items"] = [
        {**template, "groupId": group_id, "securityGroupRuleId": rule_id, "fromPort": port, "toPort": port}
        for rule_id, port in zip(rule_ids, BAD_PORTS, strict=False)
    ]
    return event


def run() -> dict[str, Any]:
    os.environ.update(ENV)
    import boto3
    from moto import mock_aws

    from shared.clients import reset_clients

    with mock_aws():
        reset_clients()
        ec2 = boto3.client("ec2", region_name=REGION)
        sns = boto3.client("sns", region_name=REGION)
        vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        topic = sns.create_topic(Name="opsauto-ops")["TopicArn"]
        os.environ["NOTIFY_TOPIC_ARN"] = topic
        from sg_remediation import handler as sg_handler

        counter = iter(range(10_000))

        def fresh_group() -> tuple[str, list[str]]:
            group = ec2.create_security_group(GroupName=f"bench-{next(counter)}", Description="bench",
                                              VpcId=vpc)["GroupId"]
            ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=_permissions())
            rules = ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [group]}])
            ingress = [r for r in rules["SecurityGroupRules"] if not r["IsEgress"]]
            assert len(ingress) == 60, len(ingress)
            bad = [r["SecurityGroupRuleId"] for r in ingress
                   if r.get("CidrIpv4") == "0.0.0.0/0" and r["FromPort"] in BAD_PORTS]
            return group, bad

        def function_once() -> float:
            group, bad = fresh_group()
            event = _event(group, bad)
            started = time.perf_counter()
            result = sg_handler.handler(event, _Context())
            elapsed = time.perf_counter() - started
            assert len(result["revoked"]) == len(BAD_PORTS), result
            return elapsed

        def baseline_once() -> float:
            group, bad = fresh_group()
            started = time.perf_counter()
            ec2.describe_security_groups(GroupIds=[group])
            for _page in ec2.get_paginator("describe_security_group_rules").paginate(
                    Filters=[{"Name": "group-id", "Values": [group]}]):
                pass
            ec2.revoke_security_group_ingress(GroupId=group, SecurityGroupRuleIds=bad)
            sns.publish(TopicArn=topic, Message=json.dumps({"revoked": bad}), Subject="bench")
            return time.perf_counter() - started

        devnull = open(os.devnull, "w")  # noqa: SIM115 - the function's JSON logs and EMF metrics are not the point
        stdout = sys.stdout
        try:
            sys.stdout = devnull
            # warm up both paths once (imports, moto's first-call setup)
            function_once()
            baseline_once()
            function_times = []
            baseline_times = []
            for _ in range(RUNS):
                function_times.append(function_once())
                baseline_times.append(baseline_once())
        finally:
            sys.stdout = stdout
            devnull.close()
        reset_clients()

    function_ms = statistics.median(function_times) * 1000
    baseline_ms = statistics.median(baseline_times) * 1000
    return {
        "rules_in_group": 60,
        "rules_revoked": len(BAD_PORTS),
        "runs": RUNS,
        "function_median_ms": round(function_ms, 1),
        "function_min_ms": round(min(function_times) * 1000, 1),
        "function_max_ms": round(max(function_times) * 1000, 1),
        "baseline_aws_calls_median_ms": round(baseline_ms, 1),
        "function_overhead_ms": round(function_ms - baseline_ms, 1),
    }


def main() -> None:
    figures = run()
    print("sg_remediation: handler end to end on moto, one group with 60 ingress rules "
          f"({figures['rules_revoked']} world-open revoked), median of {figures['runs']} runs")
    print(f"  function (handler, CloudTrail event -> revoked + report): {figures['function_median_ms']:.1f} ms "
          f"(min {figures['function_min_ms']:.1f}, max {figures['function_max_ms']:.1f})")
    print(f"  baseline (the same 4 AWS calls made directly):            "
          f"{figures['baseline_aws_calls_median_ms']:.1f} ms")
    print(f"  function's own overhead:                                  {figures['function_overhead_ms']:.1f} ms")
    print("  (moto is in process: add one network round trip per AWS call in a real account; CloudTrail -> "
          "EventBridge delivery dominates the end-to-end time, see docs/sg_remediation.md)")


if __name__ == "__main__":
    main()
