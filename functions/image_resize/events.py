"""Pure event parsing: S3 notifications (direct or wrapped in SQS) and EventBridge S3 events -> ObjectEvent.

S3 notification keys are URL-encoded with '+' for spaces (``My+Photo.jpg``): they are decoded here.
EventBridge events carry the key as stored; see ``ObjectEvent.alternative_key``. Events the function does
not act on (a restore, a storage-class transition, S3's test event) become ``IgnoredEvent`` with the
reason, so that each one is logged and counted rather than dropped.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import unquote_plus

Action = Literal["created", "removed"]
_EVENTBRIDGE_ACTIONS: dict[str, Action] = {"Object Created": "created", "Object Deleted": "removed"}


class BadEvent(ValueError):
    """The event is not in a shape this function understands (permanent: logged, not retried)."""


@dataclass(frozen=True)
class ObjectEvent:
    action: Action
    bucket: str
    key: str
    etag: str = ""
    size: int | None = None
    origin: str = "s3"
    alternative_key: str | None = None  # a second spelling to try when ``key`` is not found


@dataclass(frozen=True)
class IgnoredEvent:
    """An event of a type the function does not act on; ``reason`` says which and why."""

    bucket: str
    key: str
    reason: str
    origin: str = "s3"


Parsed = ObjectEvent | IgnoredEvent


def kind(event: Any) -> str:
    """``sqs``, ``s3``, ``eventbridge``, ``s3-test`` or ``unknown``."""
    if not isinstance(event, Mapping):
        return "unknown"
    if event.get("source") == "aws.s3" and "detail-type" in event:
        return "eventbridge"
    if event.get("Event") == "s3:TestEvent":
        return "s3-test"
    records = event.get("Records")
    if isinstance(records, list) and records and isinstance(records[0], Mapping):
        source = records[0].get("eventSource")
        if source == "aws:sqs":
            return "sqs"
        if source == "aws:s3":
            return "s3"
    return "unknown"


def _action(event_name: str) -> Action | None:
    if event_name.startswith("ObjectCreated:"):
        return "created"
    if event_name.startswith(("ObjectRemoved:", "LifecycleExpiration:")):
        return "removed"
    return None


def parse_s3_notification(event: Mapping[str, Any], origin: str = "s3") -> list[Parsed]:
    """Records of an S3 event notification; other event types (restore, transition ...) come back ignored."""
    records = event.get("Records")
    if not isinstance(records, list):
        raise BadEvent("S3 notification without a Records list")
    parsed: list[Parsed] = []
    for record in records:
        try:
            event_name = str(record.get("eventName", ""))
            action = _action(event_name)
            s3 = record["s3"]
            bucket = str(s3["bucket"]["name"])
            obj = s3["object"]
            key = unquote_plus(str(obj["key"]))
        except (KeyError, TypeError, AttributeError) as exc:
            raise BadEvent(f"S3 notification record without bucket/object key: {exc}") from None
        if action is None:
            parsed.append(IgnoredEvent(bucket, key, f"S3 event {event_name}: only ObjectCreated and ObjectRemoved "
                                       "events change renditions", origin))
            continue
        size = obj.get("size")
        parsed.append(
            ObjectEvent(action=action, bucket=bucket, key=key, etag=str(obj.get("eTag") or ""),
                        size=size if isinstance(size, int) else None, origin=origin)
        )
    return parsed


TEST_EVENT_REASON = "s3:TestEvent: S3 checks that it may deliver to this destination; nothing to resize"


def _test_event(message: Mapping[str, Any], origin: str) -> list[Parsed]:
    return [IgnoredEvent(str(message.get("Bucket", "")), "", TEST_EVENT_REASON, origin)]


def parse_sqs_body(body: str) -> list[Parsed]:
    """An SQS message body sent by S3: a notification, or S3's one-off ``s3:TestEvent`` (ignored)."""
    try:
        message = json.loads(body)
    except (json.JSONDecodeError, TypeError) as exc:
        raise BadEvent(f"SQS message body is not JSON: {exc}") from None
    message_kind = kind(message)
    if message_kind == "s3-test":
        return _test_event(message, "sqs")
    if message_kind == "eventbridge":  # an EventBridge rule may target the queue too
        return parse_eventbridge(message)
    if message_kind != "s3":
        raise BadEvent("SQS message body is not an S3 event notification")
    return parse_s3_notification(message, origin="sqs")


def parse_eventbridge(event: Mapping[str, Any]) -> list[Parsed]:
    """EventBridge ``Object Created`` / ``Object Deleted`` from ``aws.s3``; other detail types come back ignored."""
    detail_type = event.get("detail-type")
    action = _EVENTBRIDGE_ACTIONS.get(str(detail_type))
    try:
        detail = event["detail"]
        bucket = str(detail["bucket"]["name"])
        obj = detail["object"]
        key = str(obj["key"])
    except (KeyError, TypeError) as exc:
        raise BadEvent(f"EventBridge S3 event without detail.bucket.name/detail.object.key: {exc}") from None
    if action is None:
        return [IgnoredEvent(bucket, key, f"EventBridge S3 event {detail_type!r}: only Object Created and Object "
                             "Deleted change renditions", "eventbridge")]
    decoded = unquote_plus(key)
    size = obj.get("size")
    return [
        ObjectEvent(action=action, bucket=bucket, key=key, etag=str(obj.get("etag") or ""),
                    size=size if isinstance(size, int) else None, origin="eventbridge",
                    alternative_key=decoded if decoded != key else None)
    ]


def parse(event: Mapping[str, Any]) -> list[Parsed]:
    """A direct S3 notification or an EventBridge event (SQS batches are handled record by record)."""
    event_kind = kind(event)
    if event_kind == "s3":
        return parse_s3_notification(event)
    if event_kind == "eventbridge":
        return parse_eventbridge(event)
    if event_kind == "s3-test":
        return _test_event(event, "s3")
    raise BadEvent(f"unsupported event shape ({event_kind})")
