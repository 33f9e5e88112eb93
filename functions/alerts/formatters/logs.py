"""A CloudWatch Logs subscription batch: one alert for the whole batch."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from alerts.alert import Alert, Link, log_group_url
from alerts.formatters.common import (
    Options,
    as_dict,
    as_list,
    as_text,
    aws_time,
    fields_of,
)
from shared.text import truncate

MAX_LINE_CHARS = 500
CRITICAL_WORDS = ("CRITICAL", "FATAL", "Critical", "Fatal")


def _log_line(event: Mapping[str, Any]) -> str:
    message = as_text(event.get("message")).rstrip("\n")
    stamp = aws_time(event.get("timestamp")) if event.get("timestamp") is not None else ""
    return truncate(f"{stamp}  {message}" if stamp else message, MAX_LINE_CHARS)


def format_logs(payload: Mapping[str, Any], options: Options) -> Alert:
    """One alert per subscription batch (a ``DATA_MESSAGE``): the count, the first lines, links to the log
    stream and group."""
    events = [as_dict(item) for item in as_list(payload.get("logEvents"))]
    count = len(events)
    group = as_text(payload.get("logGroup"))
    stream = as_text(payload.get("logStream"))
    filters = ", ".join(as_text(name) for name in as_list(payload.get("subscriptionFilters")))
    shown = events[: options.max_log_lines]
    lines = [_log_line(event) for event in shown]
    if count > len(shown):
        lines.append(f"… and {count - len(shown):,} more")
    critical = any(word in as_text(event.get("message")) for event in events for word in CRITICAL_WORDS)
    noun = "log line" if count == 1 else "log lines"
    region = options.region
    return Alert(
        title=f"{count:,} matching {noun} in {group}",
        severity="critical" if critical else "warning",
        summary=f"{count:,} log events in {group} matched the subscription filter {filters or '(unnamed)'}; "
        f"the first {len(shown)} are below.",
        source="cloudwatch-logs",
        time=aws_time(events[0].get("timestamp")) if events else "",
        resource=group,
        fields=fields_of(("Log group", group), ("Log stream", stream), ("Filter", filters),
                       ("Events", f"{count:,}"), ("Account", payload.get("owner"))),
        links=(
            Link("Log stream", log_group_url(region, group, stream)),
            Link("Log group", log_group_url(region, group)),
        ),
        details="\n".join(lines),
    )
