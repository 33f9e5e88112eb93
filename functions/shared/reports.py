"""Action reports: what an automation changed (or would change, in ``report`` mode).

Published to the ops notifications topic as JSON in the custom-notification schema of
Amazon Q Developer in chat applications, so the topic works with this project's ``alerts``
function and with AWS's managed chat integration alike::

    {"version": "1.0", "source": "custom",
     "content": {"textType": "client-markdown", "title": ..., "description": ...,
                 "nextSteps": [...], "keywords": [...]},
     "metadata": {"threadId": ..., "summary": ..., "eventType": ..., "relatedResources": [...],
                  "additionalContext": {"automation": ..., "mode": "enforce"|"report", ...}}}

The reports of one automation run share a ``threadId`` (``<automation>-<Lambda request id>``), so chat
threads them; the SNS message attributes ``automation``, ``mode`` and ``severity`` let subscribers filter.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field, replace
from typing import Any

from shared.text import truncate as _truncate

# SNS allows 256 KiB per message; keep well below so a report always goes through.
MAX_MESSAGE_BYTES = 200_000
MAX_DESCRIPTION_CHARS = 8_000
MAX_RESOURCES = 100
SEVERITIES = ("info", "warning", "critical")


@dataclass(frozen=True)
class ActionReport:
    """One automation run's changes, ready to publish."""

    automation: str
    mode: str
    title: str
    description: str
    event_type: str
    summary: str = ""
    severity: str = "info"
    next_steps: list[str] = field(default_factory=list)
    keywords: list[str] = field(default_factory=list)
    related_resources: list[str] = field(default_factory=list)
    context: dict[str, Any] = field(default_factory=dict)
    thread_id: str = ""

    def __post_init__(self) -> None:
        if self.mode not in ("enforce", "report"):
            raise ValueError(f"mode must be enforce or report, not {self.mode!r}")
        if self.severity not in SEVERITIES:
            raise ValueError(f"severity must be one of {SEVERITIES}, not {self.severity!r}")

    def to_message(self) -> dict[str, Any]:
        title = self.title if self.mode == "enforce" else f"[report mode] {self.title}"
        description = _truncate(self.description, MAX_DESCRIPTION_CHARS)
        resources = list(dict.fromkeys(self.related_resources))
        extra = len(resources) - MAX_RESOURCES
        resources = resources[:MAX_RESOURCES]
        context: dict[str, str] = {
            "automation": self.automation,
            "mode": self.mode,
            "severity": self.severity,
        }
        if extra > 0:
            context["relatedResourcesOmitted"] = str(extra)
        for key, value in self.context.items():
            context[str(key)] = value if isinstance(value, str) else json.dumps(value, default=str, sort_keys=True)
        metadata: dict[str, Any] = {"threadId": self.thread_id} if self.thread_id else {}
        return {
            "version": "1.0",
            "source": "custom",
            "content": {
                "textType": "client-markdown",
                "title": _truncate(title, 250),
                "description": description,
                "nextSteps": list(self.next_steps),
                "keywords": list(dict.fromkeys([self.automation, self.mode, *self.keywords])),
            },
            "metadata": {
                **metadata,
                "summary": _truncate(self.summary or title, 250),
                "eventType": self.event_type,
                "relatedResources": resources,
                "additionalContext": context,
            },
        }

    def to_json(self) -> str:
        message = self.to_message()
        body = json.dumps(message, default=str)
        while len(body.encode()) > MAX_MESSAGE_BYTES and message["metadata"]["additionalContext"]:
            # Drop the largest context value first; the description always stays.
            ctx = message["metadata"]["additionalContext"]
            largest = max(ctx, key=lambda k: len(ctx[k]))
            if largest in ("automation", "mode", "severity"):
                break
            ctx[largest] = "(omitted: message too large)"
            body = json.dumps(message, default=str)
        return body


def is_action_report(message: Any) -> bool:
    """True when ``message`` (parsed JSON) is in the custom-notification schema."""
    return (
        isinstance(message, dict)
        and message.get("version") == "1.0"
        and message.get("source") == "custom"
        and isinstance(message.get("content"), dict)
    )


def run_id() -> str:
    """The current Lambda request id (Powertools' logger keeps it from ``inject_lambda_context``), or a fresh
    id outside Lambda: what makes the reports of one run share a thread."""
    from shared.observability import logger

    return str(logger.get_current_keys().get("function_request_id") or uuid.uuid4())


class ReportPublisher:
    """Publishes action reports to the ops topic. ``sns`` is a boto3 SNS client.

    Every report gets ``thread_id`` (default: ``<automation>-<run id>``) unless it carries its own.
    """

    def __init__(self, sns: Any, topic_arn: str | None, thread_id: str | None = None) -> None:
        self._sns = sns
        self._topic_arn = topic_arn
        self._thread_id = thread_id
        self._run = run_id()

    def publish(self, report: ActionReport) -> str | None:
        """Publish ``report``; returns the SNS message id (None when no topic is configured)."""
        if not self._topic_arn:
            return None
        if not report.thread_id:
            report = replace(report, thread_id=self._thread_id or f"{report.automation}-{self._run}")
        response = self._sns.publish(
            TopicArn=self._topic_arn,
            Subject=_truncate(f"{report.automation}: {report.title}".replace("\n", " "), 99),
            Message=report.to_json(),
            MessageAttributes={
                "automation": {"DataType": "String", "StringValue": report.automation},
                "mode": {"DataType": "String", "StringValue": report.mode},
                "severity": {"DataType": "String", "StringValue": report.severity},
            },
        )
        return str(response["MessageId"])
