"""Decoding: what arrived in one invocation, as messages of a known kind, each with a delivery identity.

- SNS records (``Records[].EventSource == "aws:sns"``): the message is a CloudWatch alarm (``alarm``), an
  action report in the custom-notification schema (``report``), an EventBridge event forwarded to SNS
  (``event``), or anything else (``sns``: other JSON or plain text);
- a CloudWatch Logs subscription batch (``awslogs.data``: base64 of gzip of JSON): ``logs``, and nothing
  for a ``CONTROL_MESSAGE``;
- an EventBridge event: ``event``;
- anything else: ``unknown``.

Only an undecodable ``awslogs`` payload is :class:`BadEvent` (permanent: logged and counted, not retried).
Pure: no boto3, no environment. Formatting is in :mod:`alerts.formatters`.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from shared.reports import is_action_report


class BadEvent(ValueError):
    """The event cannot be read at all (retrying will not help)."""


@dataclass(frozen=True)
class Message:
    """One thing to tell: its kind, its body (what the formatter reads) and its delivery identity.

    ``key`` is the same on every retry of the invocation and on a duplicate delivery of the same message;
    ``envelope`` is the SNS envelope (Subject, TopicArn, Timestamp) when it came through SNS.
    """

    kind: str
    body: Any
    key: str
    envelope: Mapping[str, Any] = field(default_factory=dict)


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:32]


def _parse_json(text: Any) -> Any:
    if not isinstance(text, str):
        return text
    stripped = text.strip()
    if not stripped.startswith(("{", "[")):
        return text
    try:
        return json.loads(stripped)
    except ValueError:
        return text


def is_alarm_message(message: Any) -> bool:
    return isinstance(message, dict) and "AlarmName" in message and "NewStateValue" in message


def is_eventbridge_event(event: Any) -> bool:
    return isinstance(event, dict) and "detail-type" in event and "detail" in event


def is_sns_event(event: Any) -> bool:
    records = event.get("Records") if isinstance(event, dict) else None
    return (
        isinstance(records, list)
        and bool(records)
        and all(isinstance(r, dict) and r.get("EventSource") == "aws:sns" for r in records)
    )


def decode_logs_data(data: Any) -> dict[str, Any]:
    """``awslogs.data`` -> the subscription payload; :class:`BadEvent` when it is not base64+gzip JSON."""
    if not isinstance(data, str) or not data:
        raise BadEvent("awslogs.data is missing or not a string")
    try:
        payload = json.loads(gzip.decompress(base64.b64decode(data, validate=True)))
    except (binascii.Error, OSError, EOFError, ValueError) as exc:
        raise BadEvent(f"awslogs.data is not base64-encoded gzip JSON ({type(exc).__name__})") from None
    if not isinstance(payload, dict):
        raise BadEvent("awslogs.data does not hold a JSON object")
    return payload


def _sns_kind(message: Any) -> str:
    if is_alarm_message(message):
        return "alarm"
    if is_action_report(message):
        return "report"
    if is_eventbridge_event(message):
        return "event"
    return "sns"


def _sns_message(record: Mapping[str, Any]) -> Message:
    sns = record.get("Sns") if isinstance(record.get("Sns"), dict) else {}
    assert isinstance(sns, dict)
    body = _parse_json(sns.get("Message"))
    key = f"sns#{sns.get('MessageId') or ''}#{_digest(sns.get('Message'))}"
    return Message(kind=_sns_kind(body), body=body, key=key, envelope=sns)


def _logs_messages(awslogs: Mapping[str, Any]) -> list[Message]:
    payload = decode_logs_data(awslogs.get("data"))
    kind = payload.get("messageType")
    if kind == "CONTROL_MESSAGE":
        return []  # CloudWatch Logs checking that the destination is reachable
    if kind != "DATA_MESSAGE":
        raise BadEvent(f"awslogs messageType {kind!r} is neither DATA_MESSAGE nor CONTROL_MESSAGE")
    return [Message(kind="logs", body=payload, key=f"logs#{_digest(payload)}")]


def decode(event: Any) -> list[Message]:
    """The messages one Lambda invocation carries (none for a logs control message)."""
    if is_sns_event(event):
        return [_sns_message(record) for record in event["Records"]]
    if isinstance(event, dict) and isinstance(event.get("awslogs"), dict):
        return _logs_messages(event["awslogs"])
    if is_eventbridge_event(event):
        return [Message(kind="event", body=event, key=f"event#{event.get('id') or ''}#{_digest(event)}")]
    return [Message(kind="unknown", body=event, key=f"unknown#{_digest(event)}")]
