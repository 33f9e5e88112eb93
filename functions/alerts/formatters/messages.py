"""SNS messages of no known shape, and invocations of no known shape: shown as they are, never dropped."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from alerts.alert import Alert
from alerts.formatters.common import (
    MAX_DETAILS_CHARS,
    Options,
    as_text,
    aws_time,
    fields_of,
)
from shared.text import truncate


def format_sns_text(sns: Mapping[str, Any], message: Any, options: Options) -> Alert:
    """Any other SNS message: plain text, or JSON we do not recognize (shown pretty-printed)."""
    topic = as_text(sns.get("TopicArn"))
    topic_name = topic.rsplit(":", 1)[-1] if topic else "SNS"
    title = as_text(sns.get("Subject")) or f"Message on {topic_name}"
    if isinstance(message, dict | list):
        summary, details = "", truncate(json.dumps(message, indent=2, default=str), MAX_DETAILS_CHARS)
    else:
        summary, details = as_text(message), ""
    return Alert(
        title=title,
        severity="info",
        summary=summary,
        source="sns",
        time=aws_time(sns.get("Timestamp")),
        resource=topic,
        fields=fields_of(("Topic", topic_name)),
        details=details,
    )


def format_unknown(event: Any, options: Options) -> Alert:
    """An invocation that is none of the shapes above: shown as JSON so nothing is silently lost."""
    return Alert(
        title="Unrecognized event",
        severity="info",
        summary="The alerts function received an event it does not recognize; its content is below.",
        source="unknown",
        details=truncate(json.dumps(event, indent=2, sort_keys=True, default=str), MAX_DETAILS_CHARS),
    )
