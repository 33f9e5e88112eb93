"""What a failure queue keeps, described for people: pure functions over SQS message bodies.

Two kinds of kept message exist in this project:

- ``failure``: the record Lambda sends to a function's on-failure destination after an asynchronous
  invocation failed every retry (``requestContext``, ``requestPayload``, ``responseContext``,
  ``responsePayload``). Replaying it invokes the function again with ``requestPayload``.
- ``undelivered``: an event EventBridge or EventBridge Scheduler could not deliver to the function (after
  the target's retries), kept in the same queue with the event as the body and the reason in message
  attributes (``ERROR_CODE``, ``ERROR_MESSAGE``, ``RULE_ARN``...). Replaying it invokes the function with it.
- ``dead-letter``: a message an SQS-triggered function could not process ``maxReceiveCount`` times, moved
  by SQS to the queue's dead-letter queue with its body unchanged. Replaying it sends the body back to the
  source queue.

Everything shown is masked first: credentials (CodePipeline ``artifactCredentials``, anything named like a
secret, key or token) and URLs that carry secrets (webhooks, user:password, query strings).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

MASK = "***"
_SECRET_KEY = re.compile(
    r"(secret|password|passwd|token|credential|authorization|api[-_]?key|accesskey|sessiontoken|webhook|signature)",
    re.IGNORECASE,
)
_URL = re.compile(r"https?://[^\s\"'<>]+")


def mask_url(url: str) -> str:
    """Keep scheme, host and the first path segment; drop user:password, the rest of the path and the query."""
    match = re.match(r"^(https?://)(?:[^@/]*@)?([^/?#]+)(/[^/?#]*)?", url)
    if not match:
        return MASK
    scheme, host, first = match.group(1), match.group(2), match.group(3) or ""
    rest = url[match.end():]
    return f"{scheme}{host}{first}" + (f"/{MASK}" if rest.strip("/") else "")


def mask(value: Any, key: str = "") -> Any:
    """A deep copy of ``value`` with credentials and secret-bearing URLs masked."""
    if key and _SECRET_KEY.search(key.replace("_", "")):
        return MASK if value not in (None, "", [], {}) else value
    if isinstance(value, Mapping):
        return {k: mask(v, str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [mask(v, key) for v in value]
    if isinstance(value, str):
        return _URL.sub(lambda m: mask_url(m.group(0)), value)
    return value


@dataclass(frozen=True)
class Kept:
    """One kept message, described (masked) for people; ``payload`` is the original, for replay only."""

    kind: str  # "failure" | "undelivered" | "dead-letter"
    message_id: str
    receipt_handle: str
    queue_url: str
    sent_at: datetime | None
    reason: str
    event_kind: str
    fields: dict[str, Any]
    payload: Any  # failure: the requestPayload; dead-letter: the message body (str)
    function_arn: str | None = None
    attempts: int | None = None
    attributes: dict[str, Any] = field(default_factory=dict)  # SQS system attributes
    message_attributes: dict[str, Any] = field(default_factory=dict)  # the sender's, kept for replay

    def public(self) -> dict[str, Any]:
        """What ``opsauto kept --json`` prints (never the unmasked payload)."""
        return {
            "kind": self.kind,
            "messageId": self.message_id,
            "queue": self.queue_url.rsplit("/", 1)[-1],
            "time": self.sent_at.strftime("%Y-%m-%dT%H:%M:%SZ") if self.sent_at else None,
            "reason": self.reason,
            "event": self.event_kind,
            "fields": mask(self.fields),
            "function": self.function_arn,
            "attempts": self.attempts,
        }


def describe_message(message: Mapping[str, Any], queue_url: str, kind: str) -> Kept:
    """A kept SQS message (as ReceiveMessage returns it) -> ``Kept``."""
    body_text = str(message.get("Body", ""))
    attributes = dict(message.get("Attributes") or {})
    message_attributes = {
        name: {k: v for k, v in value.items() if k in ("DataType", "StringValue", "BinaryValue")}
        for name, value in (message.get("MessageAttributes") or {}).items()
    }
    sent_at = _epoch_ms(attributes.get("SentTimestamp"))
    try:
        body: Any = json.loads(body_text)
    except ValueError:
        body = None
    if kind == "failure" and isinstance(body, Mapping) and "requestPayload" in body:
        context = body.get("requestContext") or {}
        response = body.get("responsePayload") or {}
        reason = _failure_reason(context, response)
        event_kind, fields = describe_event(body.get("requestPayload"))
        return Kept(
            kind="failure", message_id=str(message.get("MessageId", "")),
            receipt_handle=str(message.get("ReceiptHandle", "")), queue_url=queue_url,
            sent_at=_iso(body.get("timestamp")) or sent_at, reason=reason, event_kind=event_kind, fields=fields,
            payload=body.get("requestPayload"), function_arn=context.get("functionArn"),
            attempts=context.get("approximateInvokeCount"), attributes=attributes,
        )
    event_kind, fields = describe_event(body) if body is not None else ("text", {"body": body_text[:200]})
    if kind == "failure":  # in a failure queue but not a Lambda record: EventBridge could not deliver it
        code = _attribute(message_attributes, "ERROR_CODE")
        text = _attribute(message_attributes, "ERROR_MESSAGE")
        return Kept(
            kind="undelivered", message_id=str(message.get("MessageId", "")),
            receipt_handle=str(message.get("ReceiptHandle", "")), queue_url=queue_url, sent_at=sent_at,
            reason=f"not delivered: {code or 'unknown error'}" + (f": {text[:200]}" if text else ""),
            event_kind=event_kind, fields=fields, payload=body if body is not None else body_text,
            attempts=_int(_attribute(message_attributes, "RETRY_ATTEMPTS")), attributes=attributes,
            message_attributes=message_attributes,
        )
    receives = attributes.get("ApproximateReceiveCount")
    return Kept(
        kind="dead-letter", message_id=str(message.get("MessageId", "")),
        receipt_handle=str(message.get("ReceiptHandle", "")), queue_url=queue_url, sent_at=sent_at,
        reason=f"not processed after {receives} receives" if receives else "moved to the dead-letter queue",
        event_kind=event_kind, fields=fields, payload=body_text,
        attempts=int(receives) if receives and str(receives).isdigit() else None, attributes=attributes,
        message_attributes=message_attributes,
    )


def _attribute(attributes: Mapping[str, Any], name: str) -> str:
    value = attributes.get(name) or {}
    return str(value.get("StringValue", "")) if isinstance(value, Mapping) else ""


def _int(text: str) -> int | None:
    return int(text) if text.isdigit() else None


def _failure_reason(context: Mapping[str, Any], response: Any) -> str:
    condition = context.get("condition", "failed")
    if isinstance(response, Mapping):
        error = response.get("errorType") or "Error"
        text = str(response.get("errorMessage") or "").strip().splitlines()
        return f"{condition}: {error}: {text[0][:200]}" if text else f"{condition}: {error}"
    return str(condition)


def describe_event(event: Any) -> tuple[str, dict[str, Any]]:
    """The kind of an AWS event and its key fields (unmasked; callers mask what they print)."""
    if not isinstance(event, Mapping):
        return ("unknown", {})
    if "CodePipeline.job" in event:
        job = event["CodePipeline.job"] or {}
        config = ((job.get("data") or {}).get("actionConfiguration") or {}).get("configuration") or {}
        return ("codepipeline-job", {"jobId": job.get("id"), "function": config.get("FunctionName"),
                                     "continuation": bool((job.get("data") or {}).get("continuationToken"))})
    if "DeploymentId" in event and "LifecycleEventHookExecutionId" in event:
        return ("codedeploy-hook", {"deploymentId": event["DeploymentId"]})
    if {"SecretId", "Step"} <= set(event):
        return ("secrets-rotation", {"secretId": event["SecretId"], "step": event["Step"]})
    if "detail-type" in event and "source" in event:
        fields: dict[str, Any] = {"source": event.get("source"), "detailType": event.get("detail-type"),
                                  "account": event.get("account"), "region": event.get("region"),
                                  "time": event.get("time")}
        detail = event.get("detail") or {}
        if isinstance(detail, Mapping) and detail.get("eventName"):
            fields["eventName"] = detail["eventName"]
        if event.get("resources"):
            fields["resources"] = list(event["resources"])[:5]
        return ("eventbridge", fields)
    records = event.get("Records")
    if isinstance(records, list) and records:
        return _describe_records(records)
    if "awslogs" in event:
        return ("cloudwatch-logs", {})
    if {"bucket", "key"} <= set(event) or ("account" in event and "region" in event):
        return ("work-item", {k: event[k] for k in ("account", "region", "bucket", "key") if k in event})
    return ("unknown", {"keys": sorted(map(str, event))[:10]})


def _describe_records(records: list[Any]) -> tuple[str, dict[str, Any]]:
    first = records[0] if isinstance(records[0], Mapping) else {}
    source = first.get("eventSource") or first.get("EventSource") or ""
    if source == "aws:s3":
        objects = [f"s3://{r['s3']['bucket']['name']}/{r['s3']['object']['key']}" for r in records
                   if isinstance(r, Mapping) and "s3" in r]
        return ("s3", {"objects": objects[:5], "count": len(records), "event": first.get("eventName")})
    if source == "aws:sns":
        sns = first.get("Sns") or {}
        return ("sns", {"topic": sns.get("TopicArn"), "subject": sns.get("Subject"), "count": len(records)})
    if source == "aws:sqs":
        return ("sqs", {"queue": first.get("eventSourceARN"), "count": len(records)})
    return ("records", {"count": len(records), "source": source})


def _epoch_ms(value: Any) -> datetime | None:
    try:
        return datetime.fromtimestamp(int(value) / 1000, UTC)
    except (TypeError, ValueError):
        return None


def _iso(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
