"""Action reports of the other automations (the custom-notification schema of ``shared.reports``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from alerts.alert import Alert
from alerts.formatters.common import (
    Options,
    as_dict,
    as_list,
    as_text,
    fields_of,
    joined,
)
from shared.reports import SEVERITIES


def format_action_report(message: Mapping[str, Any], options: Options) -> Alert:
    """An action report of another automation (``shared.reports``)."""
    content = as_dict(message.get("content"))
    metadata = as_dict(message.get("metadata"))
    context = as_dict(metadata.get("additionalContext"))
    severity = as_text(context.get("severity"))
    resources = [as_text(item) for item in as_list(metadata.get("relatedResources"))]
    omitted = len(resources) - 5
    resource_text = ", ".join(resources[:5]) + (f" (+{omitted} more)" if omitted > 0 else "")
    steps = [as_text(step) for step in as_list(content.get("nextSteps")) if as_text(step)]
    summary = as_text(content.get("description"))
    if steps:
        summary = joined([summary, "Next steps:\n" + "\n".join(f"• {step}" for step in steps)], "\n\n")
    extra = [(str(key), value) for key, value in context.items() if key not in ("automation", "mode", "severity")]
    automation = as_text(context.get("automation"))
    return Alert(
        title=as_text(content.get("title")) or as_text(metadata.get("summary")) or "Action report",
        severity=severity if severity in SEVERITIES else "info",
        summary=summary or as_text(metadata.get("summary")),
        source=f"action-report:{automation}" if automation else "action-report",
        resource=resources[0] if len(resources) == 1 else "",
        fields=fields_of(
            ("Automation", automation),
            ("Mode", context.get("mode")),
            ("Event", metadata.get("eventType")),
            ("Resources", resource_text),
            *extra[:5],
        ),
        thread_key=f"report#{as_text(metadata.get('threadId'))}" if metadata.get("threadId") else "",
        thread_role="group" if metadata.get("threadId") else "",
    )
