"""Formatting: one pure formatter per message source, chosen by a small dispatcher.

:func:`format_message` picks the formatter by the decoded message's kind (and, for EventBridge events,
by ``(source, detail-type)`` in :data:`EVENT_FORMATTERS`). A formatter that trips over an unexpected
shape of its source falls back to the generic rendering of that message, so an odd event never crashes
the function and is never dropped.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from alerts.alert import Alert
from alerts.decode import Message, decode
from alerts.formatters.alarms import format_alarm, format_alarm_event
from alerts.formatters.common import Options, as_text, aws_time
from alerts.formatters.events import (
    format_codebuild,
    format_codepipeline,
    format_ec2_state,
    format_generic_event,
    format_guardduty,
    format_health,
)
from alerts.formatters.logs import format_logs
from alerts.formatters.messages import format_sns_text, format_unknown
from alerts.formatters.operations import format_acm, format_backup, format_config, format_trusted_advisor
from alerts.formatters.reports import format_action_report
from alerts.formatters.routes import route_of
from alerts.formatters.security import format_inspector, format_malware_scan, format_securityhub

__all__ = ["EVENT_FORMATTERS", "Options", "alerts_from_event", "format_event", "format_message", "keyed_alerts"]

Formatter = Callable[[Mapping[str, Any], Options], Alert]
# Exceptions a formatter raises on a shape it did not expect (a missing key, a string for a number).
SHAPE_ERRORS = (KeyError, TypeError, ValueError, AttributeError, IndexError)

EVENT_FORMATTERS: dict[tuple[str, str], Formatter] = {
    ("aws.ec2", "EC2 Instance State-change Notification"): format_ec2_state,
    ("aws.guardduty", "GuardDuty Finding"): format_guardduty,
    ("aws.health", "AWS Health Event"): format_health,
    ("aws.codepipeline", "CodePipeline Pipeline Execution State Change"): format_codepipeline,
    ("aws.codepipeline", "CodePipeline Stage Execution State Change"): format_codepipeline,
    ("aws.codepipeline", "CodePipeline Action Execution State Change"): format_codepipeline,
    ("aws.codebuild", "CodeBuild Build State Change"): format_codebuild,
    ("aws.cloudwatch", "CloudWatch Alarm State Change"): format_alarm_event,
    ("aws.securityhub", "Security Hub Findings - Imported"): format_securityhub,
    ("aws.inspector2", "Inspector2 Finding"): format_inspector,
    ("aws.guardduty", "GuardDuty Malware Protection Object Scan Result"): format_malware_scan,
    ("aws.backup", "Backup Job State Change"): format_backup,
    ("aws.backup", "Copy Job State Change"): format_backup,
    ("aws.backup", "Restore Job State Change"): format_backup,
    ("aws.config", "Config Rules Compliance Change"): format_config,
    ("aws.acm", "ACM Certificate Approaching Expiration"): format_acm,
    ("aws.acm", "ACM Certificate Expired"): format_acm,
    ("aws.trustedadvisor", "Trusted Advisor Check Item Refresh Notification"): format_trusted_advisor,
}


def format_event(event: Mapping[str, Any], options: Options) -> Alert:
    """The formatter for ``(source, detail-type)``; the generic one when none matches or it trips."""
    formatter = EVENT_FORMATTERS.get((as_text(event.get("source")), as_text(event.get("detail-type"))))
    if formatter is not None:
        try:
            return formatter(event, options)
        except SHAPE_ERRORS:
            pass  # an unexpected shape of a known type still gets a readable message
    return format_generic_event(event, options)


def _report(message: Message, options: Options) -> Alert:
    return replace(format_action_report(message.body, options), time=aws_time(message.envelope.get("Timestamp")))


KIND_FORMATTERS: dict[str, Callable[[Message, Options], Alert]] = {
    "alarm": lambda message, options: format_alarm(message.body, options),
    "report": _report,
    "event": lambda message, options: format_event(message.body, options),
    "sns": lambda message, options: format_sns_text(message.envelope, message.body, options),
    "logs": lambda message, options: format_logs(message.body, options),
    "unknown": lambda message, options: format_unknown(message.body, options),
}


def _formatted(message: Message, options: Options) -> Alert:
    try:
        return KIND_FORMATTERS[message.kind](message, options)
    except SHAPE_ERRORS:
        if message.envelope:
            return format_sns_text(message.envelope, message.body, options)
        return format_unknown(message.body, options)


def format_message(message: Message, options: Options) -> Alert:
    """The alert of one decoded message, with what routing looks at."""
    return replace(_formatted(message, options), route=route_of(message, options.region))


def keyed_alerts(event: Any, options: Options) -> list[tuple[str, Alert]]:
    """``(delivery key, alert)`` for every message of one invocation."""
    return [(message.key, format_message(message, options)) for message in decode(event)]


def alerts_from_event(event: Any, options: Options) -> list[Alert]:
    """The alerts one Lambda invocation carries (none for a logs control message)."""
    return [alert for _, alert in keyed_alerts(event, options)]
