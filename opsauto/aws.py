"""The only module of the operator command that calls AWS: what a stack deployed, kept messages, replays."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, NoRegionError

from opsauto.project import OpsautoError
from shared.errors import error_code

PAGE = 10  # ReceiveMessage returns at most 10 messages per call


@dataclass
class Queue:
    url: str
    arn: str
    logical_id: str
    kind: str  # "failure" (a function's on-failure destination), "dead-letter" (an SQS DLQ), "work"
    depth: int = 0
    in_flight: int = 0
    source_url: str | None = None  # dead-letter: the queue whose messages it keeps
    function_arn: str | None = None  # failure: the function whose failed invocations it keeps


@dataclass
class Function:
    name: str
    arn: str
    logical_id: str
    mode: str | None
    service: str | None


@dataclass
class Deployed:
    stack_name: str
    status: str
    functions: list[Function] = field(default_factory=list)
    queues: list[Queue] = field(default_factory=list)
    alarms: list[dict[str, Any]] = field(default_factory=list)
    dashboards: list[str] = field(default_factory=list)

    @property
    def kept_queues(self) -> list[Queue]:
        return [q for q in self.queues if q.kind in ("failure", "dead-letter")]


class Aws:
    """boto3 clients of one session (the current credentials and region)."""

    def __init__(self, session: boto3.Session | None = None) -> None:
        self.session = session or boto3.Session()
        if self.session.get_credentials() is None:
            raise OpsautoError("no AWS credentials found (environment, AWS_PROFILE, ~/.aws or SSO: "
                               "`aws sso login --profile <name>`, then AWS_PROFILE=<name> opsauto ...)")
        if not self.session.region_name:
            raise OpsautoError("no AWS region: set AWS_REGION or pass --region")
        self.region: str = self.session.region_name
        self._clients: dict[str, Any] = {}

    def client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = self.session.client(service)  # type: ignore[call-overload]
        return self._clients[service]

    # ------------------------------------------------------------------ discovery
    def deployed(self, stack_name: str) -> Deployed | None:
        """What the stack holds, or None when it is not deployed."""
        cfn = self.client("cloudformation")
        try:
            stack = cfn.describe_stacks(StackName=stack_name)["Stacks"][0]
        except ClientError as exc:
            if error_code(exc) == "ValidationError":
                return None
            raise
        found = Deployed(stack_name, str(stack.get("StackStatus", "")))
        resources = list(self._resources(stack_name))
        queues: dict[str, Queue] = {}
        redrives: dict[str, str] = {}  # dead-letter queue ARN -> URL of the queue it keeps messages of
        for res in resources:
            kind, physical, logical = res["ResourceType"], res.get("PhysicalResourceId") or "", res["LogicalResourceId"]
            if not physical:
                continue
            if kind == "AWS::Lambda::Function":
                function = self._function(physical, logical)
                if function is not None:
                    found.functions.append(function)
            elif kind == "AWS::SQS::Queue":
                attrs = self.client("sqs").get_queue_attributes(QueueUrl=physical, AttributeNames=["All"])["Attributes"]
                queues[attrs["QueueArn"]] = Queue(
                    physical, attrs["QueueArn"], logical, "work",
                    depth=int(attrs.get("ApproximateNumberOfMessages", 0)),
                    in_flight=int(attrs.get("ApproximateNumberOfMessagesNotVisible", 0)))
                if attrs.get("RedrivePolicy"):
                    redrives[json.loads(attrs["RedrivePolicy"])["deadLetterTargetArn"]] = physical
            elif kind == "AWS::CloudWatch::Dashboard":
                found.dashboards.append(physical)
        for dlq_arn, source_url in redrives.items():
            if dlq_arn in queues:
                queues[dlq_arn].kind, queues[dlq_arn].source_url = "dead-letter", source_url
        for function in found.functions:
            for arn in self._failure_destinations(function.name):
                if arn in queues:
                    queues[arn].kind, queues[arn].function_arn = "failure", function.arn
        found.queues = sorted(queues.values(), key=lambda q: q.logical_id)
        found.alarms = self._alarms(stack_name)
        return found

    def _function(self, name: str, logical_id: str) -> Function | None:
        config = self.client("lambda").get_function_configuration(FunctionName=name)
        env = (config.get("Environment") or {}).get("Variables") or {}
        if "POWERTOOLS_SERVICE_NAME" not in env:
            return None  # CDK's own helper functions (custom resources), not an automation
        return Function(name, config["FunctionArn"], logical_id, env.get("MODE"), env.get("POWERTOOLS_SERVICE_NAME"))

    def _resources(self, stack_name: str) -> Iterator[dict[str, Any]]:
        for page in self.client("cloudformation").get_paginator("list_stack_resources").paginate(StackName=stack_name):
            yield from page["StackResourceSummaries"]

    def _failure_destinations(self, function_name: str) -> list[str]:
        try:
            config = self.client("lambda").get_function_event_invoke_config(FunctionName=function_name)
        except ClientError as exc:
            if error_code(exc) == "ResourceNotFoundException":
                return []
            raise
        destination = ((config.get("DestinationConfig") or {}).get("OnFailure") or {}).get("Destination")
        return [destination] if destination else []

    def _alarms(self, stack_name: str) -> list[dict[str, Any]]:
        """The stack's alarms: their names start with the stack's name (explicit names, or CloudFormation's)."""
        alarms: list[dict[str, Any]] = []
        paginator = self.client("cloudwatch").get_paginator("describe_alarms")
        for page in paginator.paginate(AlarmNamePrefix=f"{stack_name}-", AlarmTypes=["MetricAlarm", "CompositeAlarm"]):
            for alarm in page.get("MetricAlarms", []) + page.get("CompositeAlarms", []):
                alarms.append({"name": alarm["AlarmName"], "state": alarm["StateValue"],
                               "reason": alarm.get("StateReason", ""),
                               "description": alarm.get("AlarmDescription", "")})
        return alarms

    # ------------------------------------------------------------------ activity
    def activity(self, function_name: str, now: datetime | None = None) -> dict[str, Any]:
        """Invocations and errors of the last 24 h (1-minute resolution), and the last invocation."""
        end = (now or datetime.now(UTC)).replace(second=0, microsecond=0) + timedelta(minutes=1)
        start = end - timedelta(hours=24)
        queries = [
            {"Id": metric.lower(), "ReturnData": True, "MetricStat": {
                "Metric": {"Namespace": "AWS/Lambda", "MetricName": metric,
                           "Dimensions": [{"Name": "FunctionName", "Value": function_name}]},
                "Period": 60, "Stat": "Sum"}}
            for metric in ("Invocations", "Errors")
        ]
        series: dict[str, dict[datetime, float]] = {"invocations": {}, "errors": {}}
        paginator = self.client("cloudwatch").get_paginator("get_metric_data")
        for page in paginator.paginate(MetricDataQueries=queries, StartTime=start, EndTime=end):
            for result in page["MetricDataResults"]:
                for ts, value in zip(result.get("Timestamps", []), result.get("Values", []), strict=False):
                    bucket = series[result["Id"]]
                    bucket[ts] = bucket.get(ts, 0.0) + float(value)
        invoked = sorted(ts for ts, value in series["invocations"].items() if value > 0)
        last = invoked[-1] if invoked else None
        return {
            "invocations_24h": int(sum(series["invocations"].values())),
            "errors_24h": int(sum(series["errors"].values())),
            "last_invocation": last,
            "last_result": None if last is None else ("error" if series["errors"].get(last, 0) > 0 else "ok"),
        }

    # ------------------------------------------------------------------ kept messages
    def receive(self, queue: Queue, limit: int, visibility_seconds: int) -> list[dict[str, Any]]:
        """Up to ``limit`` messages of ``queue``, hidden from others for ``visibility_seconds``."""
        messages: list[dict[str, Any]] = []
        seen: set[str] = set()
        sqs = self.client("sqs")
        while len(messages) < limit:
            batch = sqs.receive_message(
                QueueUrl=queue.url, MaxNumberOfMessages=min(PAGE, limit - len(messages)),
                VisibilityTimeout=visibility_seconds, WaitTimeSeconds=0,
                MessageSystemAttributeNames=["All"], MessageAttributeNames=["All"],
            ).get("Messages", [])
            fresh = [m for m in batch if m["MessageId"] not in seen]
            if not fresh:
                break
            seen.update(m["MessageId"] for m in fresh)
            messages.extend(fresh)
        return messages

    def release(self, queue_url: str, receipt_handles: list[str]) -> None:
        """Make received messages visible again at once (listing must not hide them for long)."""
        sqs = self.client("sqs")
        for start in range(0, len(receipt_handles), PAGE):
            entries = [{"Id": str(i), "ReceiptHandle": handle, "VisibilityTimeout": 0}
                       for i, handle in enumerate(receipt_handles[start:start + PAGE])]
            if entries:
                sqs.change_message_visibility_batch(QueueUrl=queue_url, Entries=entries)

    def delete(self, queue_url: str, receipt_handle: str) -> None:
        self.client("sqs").delete_message(QueueUrl=queue_url, ReceiptHandle=receipt_handle)

    def invoke_async(self, function_arn: str, payload: Any) -> int:
        """An asynchronous invocation (what Lambda's event sources do); the status code (202 = accepted)."""
        name, _, qualifier = _split_qualifier(function_arn)
        kwargs: dict[str, Any] = {"FunctionName": name, "InvocationType": "Event",
                                  "Payload": json.dumps(payload).encode()}
        if qualifier and qualifier != "$LATEST":
            kwargs["Qualifier"] = qualifier
        return int(self.client("lambda").invoke(**kwargs)["StatusCode"])

    def send(self, queue_url: str, body: str, attributes: dict[str, Any] | None = None) -> str:
        kwargs: dict[str, Any] = {"QueueUrl": queue_url, "MessageBody": body}
        if attributes:
            kwargs["MessageAttributes"] = attributes
        return str(self.client("sqs").send_message(**kwargs)["MessageId"])


def _split_qualifier(function_arn: str) -> tuple[str, str, str]:
    """``arn:...:function:name:$LATEST`` -> (``arn:...:function:name``, ``:``, ``$LATEST``)."""
    parts = function_arn.split(":")
    if len(parts) == 8:
        return ":".join(parts[:7]), ":", parts[7]
    return function_arn, "", ""


AWS_ERRORS = (ClientError, BotoCoreError)
CREDENTIAL_ERRORS = (NoCredentialsError, NoRegionError)


def dashboard_url(region: str, name: str) -> str:
    return f"https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}#dashboards/dashboard/{name}"
