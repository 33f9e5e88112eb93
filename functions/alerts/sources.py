"""One pure formatter per message source, and the small dispatcher that picks it.

Every formatter turns one source's payload into an :class:`~alerts.alert.Alert`. The dispatcher,
:func:`alerts_from_event`, recognizes the event shape:

- SNS records (``Records[].EventSource == "aws:sns"``) whose message is a CloudWatch alarm
  (metric, metric-math or composite), an action report in the custom-notification schema, an
  EventBridge event forwarded to SNS, other JSON, or plain text;
- a CloudWatch Logs subscription batch (``awslogs.data``: base64 of gzip of JSON), where a
  ``CONTROL_MESSAGE`` gives no alert and a ``DATA_MESSAGE`` gives ONE alert for the whole batch;
- an EventBridge event, by ``source`` / ``detail-type``, with a generic rendering for any other.

Unknown shapes get the generic rendering; a formatter that trips over an unexpected shape falls
back to it too, so an odd event never crashes the function. Only an undecodable ``awslogs``
payload is :class:`BadEvent` (permanent: logged and counted, not retried).
"""

from __future__ import annotations

import base64
import binascii
import gzip
import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from alerts.alert import (
    SEVERITIES,
    Alert,
    Link,
    alarm_url,
    codebuild_build_url,
    codepipeline_execution_url,
    ec2_instance_url,
    guardduty_finding_url,
    health_event_url,
    log_group_url,
    region_of_arn,
)
from shared.reports import is_action_report
from shared.text import truncate
from shared.timeutil import iso, parse_time

MAX_LINE_CHARS = 500
MAX_DETAILS_CHARS = 6_000
MAX_FIELD_CHARS = 300
GENERIC_FIELDS = 8


class BadEvent(ValueError):
    """The event cannot be read at all (retrying will not help)."""


@dataclass(frozen=True)
class Options:
    """What formatters need beyond the event: the function's region and the log-line budget."""

    region: str = "us-east-1"
    max_log_lines: int = 20


# --- helpers -------------------------------------------------------------------------------------


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, int | float | bool):
        return str(value)
    return json.dumps(value, default=str, sort_keys=True)


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _time(value: Any) -> str:
    """An AWS time (ISO with ``Z``, ``+0000`` or epoch milliseconds) as ``2026-11-28T08:05:00Z``."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return iso(datetime.fromtimestamp(value / 1000, UTC))
    text = _text(value).strip()
    if not text:
        return ""
    if len(text) > 5 and text[-5] in "+-" and text[-4:].isdigit():
        text = f"{text[:-2]}:{text[-2:]}"  # +0000 -> +00:00
    try:
        return iso(parse_time(text))
    except ValueError:
        pass
    try:  # AWS Health writes RFC 1123 times: "Sat, 28 Nov 2026 07:50:00 GMT"
        return iso(parsedate_to_datetime(text))
    except (TypeError, ValueError, IndexError):
        return _text(value)


def _field(name: str, value: Any) -> tuple[str, str] | None:
    text = _text(value).strip()
    return (name, truncate(text, MAX_FIELD_CHARS)) if text else None


def _fields(*pairs: tuple[str, Any]) -> tuple[tuple[str, str], ...]:
    found = (_field(name, value) for name, value in pairs)
    return tuple(item for item in found if item is not None)


def _join(parts: list[str], sep: str = "\n") -> str:
    return sep.join(part for part in parts if part)


# --- CloudWatch alarms (SNS) ---------------------------------------------------------------------

ALARM_SEVERITY = {"ALARM": "critical", "INSUFFICIENT_DATA": "warning", "OK": "info"}
STATE_LABEL = {"ALARM": "ALARM", "INSUFFICIENT_DATA": "INSUFFICIENT DATA", "OK": "OK"}
OPERATORS = {
    "GreaterThanOrEqualToThreshold": ">=",
    "GreaterThanThreshold": ">",
    "LessThanThreshold": "<",
    "LessThanOrEqualToThreshold": "<=",
    "LessThanLowerOrGreaterThanUpperThreshold": "outside the band",
    "GreaterThanUpperThreshold": "above the band",
    "LessThanLowerThreshold": "below the band",
}


def is_alarm_message(message: Any) -> bool:
    return isinstance(message, dict) and "AlarmName" in message and "NewStateValue" in message


def _dimensions(items: Any) -> str:
    pairs = []
    for item in _list(items):
        item = _dict(item)
        name = item.get("name", item.get("Name"))
        value = item.get("value", item.get("Value"))
        if name is not None:
            pairs.append(f"{name}={value}")
    return ", ".join(pairs)


def _metric_text(namespace: Any, name: Any, stat: Any, dimensions: Any) -> str:
    dims = _dimensions(dimensions)
    text = f"{_text(namespace)} {_text(name)}".strip()
    if stat:
        text += f" ({_text(stat)})"
    if dims:
        text += f" [{dims}]"
    return text


def _alarm_condition(trigger: Mapping[str, Any]) -> str:
    operator = OPERATORS.get(_text(trigger.get("ComparisonOperator")), _text(trigger.get("ComparisonOperator")))
    threshold = trigger.get("Threshold")
    if threshold is None and trigger.get("ThresholdMetricId"):
        threshold = f"band {trigger['ThresholdMetricId']}"
    periods = trigger.get("EvaluationPeriods")
    datapoints = trigger.get("DatapointsToAlarm") or periods
    period = trigger.get("Period")
    text = f"{operator} {_text(threshold)}".strip()
    if periods:
        text += f" for {_text(datapoints)} of {_text(periods)} periods"
        if period:
            text += f" of {_text(period)} s"
    return text


def format_alarm(message: Mapping[str, Any], options: Options) -> Alert:
    """A CloudWatch alarm notification: metric alarm, metric-math alarm or composite alarm."""
    name = _text(message.get("AlarmName")) or "(unnamed alarm)"
    new = _text(message.get("NewStateValue"))
    old = _text(message.get("OldStateValue"))
    arn = _text(message.get("AlarmArn"))
    region = region_of_arn(arn) or options.region
    trigger = _dict(message.get("Trigger"))
    composite = "AlarmRule" in message
    fields: list[tuple[str, Any]] = [("State", f"{STATE_LABEL.get(old, old)} → {STATE_LABEL.get(new, new)}" if old
                                      else STATE_LABEL.get(new, new))]
    if composite:
        fields.append(("Rule", message.get("AlarmRule")))
        children = []
        for child in _list(message.get("TriggeringChildren")):
            child = _dict(child)
            child_name = _text(child.get("Arn")).rsplit(":alarm:", 1)[-1]
            state = _text(_dict(child.get("State")).get("Value"))
            children.append(f"{child_name} ({state})" if state else child_name)
        fields.append(("Triggered by", ", ".join(children)))
    elif trigger.get("MetricName"):
        fields.append(("Metric", _metric_text(trigger.get("Namespace"), trigger.get("MetricName"),
                                              trigger.get("ExtendedStatistic") or trigger.get("Statistic"),
                                              trigger.get("Dimensions"))))
    elif trigger.get("Metrics"):
        expressions, inputs = [], []
        for query in _list(trigger.get("Metrics")):
            query = _dict(query)
            if query.get("Expression"):
                label = _text(query.get("Label") or query.get("Id"))
                expressions.append(f"{label} = {_text(query['Expression'])}" if label else _text(query["Expression"]))
            elif query.get("MetricStat"):
                stat = _dict(query["MetricStat"])
                metric = _dict(stat.get("Metric"))
                inputs.append(f"{_text(query.get('Id'))}: " + _metric_text(
                    metric.get("Namespace"), metric.get("MetricName"), stat.get("Stat"), metric.get("Dimensions")))
        fields.append(("Expression", "; ".join(expressions)))
        fields.append(("Metrics", "; ".join(inputs)))
    if trigger:
        fields.append(("Condition", _alarm_condition(trigger)))
    fields.append(("Account", message.get("AWSAccountId")))
    fields.append(("Region", region or message.get("Region")))
    kind = "Composite alarm" if composite else "Alarm"
    return Alert(
        title=f"{STATE_LABEL.get(new, new or 'State change')}: {name}",
        severity=ALARM_SEVERITY.get(new, "warning"),
        summary=_join([_text(message.get("AlarmDescription")), _text(message.get("NewStateReason"))]),
        source="cloudwatch-alarm",
        time=_time(message.get("StateChangeTime")),
        resource=arn or name,
        fields=_fields(*fields),
        links=(Link(f"{kind} in console", alarm_url(region, name)),),
    )


# --- action reports (SNS, custom-notification schema) -------------------------------------------


def format_action_report(message: Mapping[str, Any], options: Options) -> Alert:
    """An action report of another automation (``shared.reports``)."""
    content = _dict(message.get("content"))
    metadata = _dict(message.get("metadata"))
    context = _dict(metadata.get("additionalContext"))
    severity = _text(context.get("severity"))
    resources = [_text(item) for item in _list(metadata.get("relatedResources"))]
    omitted = len(resources) - 5
    resource_text = ", ".join(resources[:5]) + (f" (+{omitted} more)" if omitted > 0 else "")
    steps = [_text(step) for step in _list(content.get("nextSteps")) if _text(step)]
    summary = _text(content.get("description"))
    if steps:
        summary = _join([summary, "Next steps:\n" + "\n".join(f"• {step}" for step in steps)], "\n\n")
    extra = [(str(key), value) for key, value in context.items() if key not in ("automation", "mode", "severity")]
    automation = _text(context.get("automation"))
    return Alert(
        title=_text(content.get("title")) or _text(metadata.get("summary")) or "Action report",
        severity=severity if severity in SEVERITIES else "info",
        summary=summary or _text(metadata.get("summary")),
        source=f"action-report:{automation}" if automation else "action-report",
        resource=resources[0] if len(resources) == 1 else "",
        fields=_fields(
            ("Automation", automation),
            ("Mode", context.get("mode")),
            ("Event", metadata.get("eventType")),
            ("Resources", resource_text),
            *extra[:5],
        ),
    )


# --- plain SNS messages ---------------------------------------------------------------------------


def format_sns_text(sns: Mapping[str, Any], message: Any, options: Options) -> Alert:
    """Any other SNS message: plain text, or JSON we do not recognize (shown pretty-printed)."""
    topic = _text(sns.get("TopicArn"))
    topic_name = topic.rsplit(":", 1)[-1] if topic else "SNS"
    title = _text(sns.get("Subject")) or f"Message on {topic_name}"
    if isinstance(message, dict | list):
        summary, details = "", truncate(json.dumps(message, indent=2, default=str), MAX_DETAILS_CHARS)
    else:
        summary, details = _text(message), ""
    return Alert(
        title=title,
        severity="info",
        summary=summary,
        source="sns",
        time=_time(sns.get("Timestamp")),
        resource=topic,
        fields=_fields(("Topic", topic_name)),
        details=details,
    )


# --- CloudWatch Logs subscription -----------------------------------------------------------------

CRITICAL_WORDS = ("CRITICAL", "FATAL", "Critical", "Fatal")


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


def _log_line(event: Mapping[str, Any]) -> str:
    message = _text(event.get("message")).rstrip("\n")
    stamp = _time(event.get("timestamp")) if event.get("timestamp") is not None else ""
    return truncate(f"{stamp}  {message}" if stamp else message, MAX_LINE_CHARS)


def format_logs(payload: Mapping[str, Any], options: Options) -> Alert | None:
    """One alert per subscription batch: the count, the first lines, links to the log stream and group.

    ``CONTROL_MESSAGE`` (CloudWatch Logs checking the destination is reachable) gives ``None``.
    """
    kind = payload.get("messageType")
    if kind == "CONTROL_MESSAGE":
        return None
    if kind != "DATA_MESSAGE":
        raise BadEvent(f"awslogs messageType {kind!r} is neither DATA_MESSAGE nor CONTROL_MESSAGE")
    events = [_dict(item) for item in _list(payload.get("logEvents"))]
    count = len(events)
    group = _text(payload.get("logGroup"))
    stream = _text(payload.get("logStream"))
    filters = ", ".join(_text(name) for name in _list(payload.get("subscriptionFilters")))
    shown = events[: options.max_log_lines]
    lines = [_log_line(event) for event in shown]
    if count > len(shown):
        lines.append(f"… and {count - len(shown):,} more")
    critical = any(word in _text(event.get("message")) for event in events for word in CRITICAL_WORDS)
    noun = "log line" if count == 1 else "log lines"
    region = options.region
    return Alert(
        title=f"{count:,} matching {noun} in {group}",
        severity="critical" if critical else "warning",
        summary=f"{count:,} log events in {group} matched the subscription filter {filters or '(unnamed)'}; "
        f"the first {len(shown)} are below.",
        source="cloudwatch-logs",
        time=_time(events[0].get("timestamp")) if events else "",
        resource=group,
        fields=_fields(("Log group", group), ("Log stream", stream), ("Filter", filters),
                       ("Events", f"{count:,}"), ("Account", payload.get("owner"))),
        links=(
            Link("Log stream", log_group_url(region, group, stream)),
            Link("Log group", log_group_url(region, group)),
        ),
        details="\n".join(lines),
    )


# --- EventBridge ----------------------------------------------------------------------------------

EC2_SEVERITY = {"stopping": "warning", "stopped": "warning", "shutting-down": "warning", "terminated": "critical"}
HEALTH_STATUS_CLOSED = ("closed", "resolved")


def _event_common(event: Mapping[str, Any], options: Options) -> tuple[str, str, str]:
    region = _text(event.get("region")) or options.region
    return region, _text(event.get("account")), _time(event.get("time"))


def format_ec2_state(event: Mapping[str, Any], options: Options) -> Alert:
    detail = _dict(event.get("detail"))
    region, account, time = _event_common(event, options)
    instance = _text(detail["instance-id"])
    state = _text(detail.get("state"))
    return Alert(
        title=f"EC2 instance {instance} is {state}",
        severity=EC2_SEVERITY.get(state, "info"),
        summary=f"Instance {instance} in {region} changed state to {state}.",
        source="ec2",
        time=time,
        resource=instance,
        fields=_fields(("Instance", instance), ("State", state), ("Account", account), ("Region", region)),
        links=(Link("Instance in console", ec2_instance_url(region, instance)),),
    )


def guardduty_severity(score: float) -> str:
    """GuardDuty's bands: 7.0-8.9 High (and 9.0+ Critical) -> critical, 4.0-6.9 Medium -> warning, Low -> info."""
    if score >= 7:
        return "critical"
    if score >= 4:
        return "warning"
    return "info"


def _guardduty_resource(resource: Mapping[str, Any]) -> str:
    instance = _dict(resource.get("instanceDetails")).get("instanceId")
    if instance:
        return _text(instance)
    key = _dict(resource.get("accessKeyDetails"))
    if key.get("userName") or key.get("accessKeyId"):
        return _text(key.get("userName") or key.get("accessKeyId"))
    buckets = [_text(_dict(b).get("name")) for b in _list(resource.get("s3BucketDetails"))]
    return ", ".join(b for b in buckets if b) or _text(resource.get("resourceType"))


def format_guardduty(event: Mapping[str, Any], options: Options) -> Alert:
    detail = _dict(event.get("detail"))
    region, account, time = _event_common(event, options)
    region = _text(detail.get("region")) or region
    score = float(detail.get("severity") or 0)
    service = _dict(detail.get("service"))
    resource = _guardduty_resource(_dict(detail.get("resource")))
    finding_id = _text(detail.get("id"))
    return Alert(
        title=f"GuardDuty: {_text(detail.get('title')) or _text(detail.get('type'))}",
        severity=guardduty_severity(score),
        summary=_text(detail.get("description")),
        source="guardduty",
        time=_time(detail.get("updatedAt")) or time,
        resource=resource,
        fields=_fields(("Finding type", detail.get("type")), ("Severity", f"{score:g}"), ("Resource", resource),
                       ("Count", service.get("count")), ("Account", detail.get("accountId") or account),
                       ("Region", region)),
        links=(Link("Finding in console", guardduty_finding_url(region, finding_id)),) if finding_id else (),
    )


def format_health(event: Mapping[str, Any], options: Options) -> Alert:
    detail = _dict(event.get("detail"))
    region, account, time = _event_common(event, options)
    category = _text(detail.get("eventTypeCategory"))
    status = _text(detail.get("statusCode")).lower()
    if status in HEALTH_STATUS_CLOSED:
        severity = "info"
    elif category == "issue":
        severity = "critical"
    elif category == "scheduledChange":
        severity = "warning"
    else:
        severity = "info"
    descriptions = [_dict(item) for item in _list(detail.get("eventDescription"))]
    english = next((d for d in descriptions if _text(d.get("language")).startswith("en")), None)
    description = _text((english or (descriptions[0] if descriptions else {})).get("latestDescription"))
    entities = [_text(_dict(item).get("entityValue")) for item in _list(detail.get("affectedEntities"))]
    entities = [entity for entity in entities if entity] or [_text(r) for r in _list(event.get("resources"))]
    arn = _text(detail.get("eventArn"))
    service = _text(detail.get("service"))
    code = _text(detail.get("eventTypeCode"))
    return Alert(
        title=f"AWS Health: {service} {code}".strip() + (" (resolved)" if status in HEALTH_STATUS_CLOSED else ""),
        severity=severity,
        summary=truncate(description, 2_500),
        source="health",
        time=_time(detail.get("startTime")) or time,
        resource=entities[0] if len(entities) == 1 else "",
        fields=_fields(("Service", service), ("Category", category), ("Status", detail.get("statusCode")),
                       ("Start", _time(detail.get("startTime"))), ("End", _time(detail.get("endTime"))),
                       ("Affected", ", ".join(entities[:10]) + (f" (+{len(entities) - 10} more)"
                                                                if len(entities) > 10 else "")),
                       ("Account", account), ("Region", _text(detail.get("eventRegion")) or region)),
        links=(Link("Event in AWS Health", health_event_url(arn)),) if arn else (),
    )


CODEPIPELINE_BAD = ("FAILED",)
CODEPIPELINE_WARN = ("STOPPED", "SUPERSEDED", "CANCELED")


def format_codepipeline(event: Mapping[str, Any], options: Options) -> Alert:
    detail = _dict(event.get("detail"))
    region, account, time = _event_common(event, options)
    pipeline = _text(detail["pipeline"])
    state = _text(detail.get("state"))
    execution = _text(detail.get("execution-id"))
    where = pipeline
    if detail.get("stage"):
        where += f" / {_text(detail['stage'])}"
    if detail.get("action"):
        where += f" / {_text(detail['action'])}"
    severity = "critical" if state in CODEPIPELINE_BAD else "warning" if state in CODEPIPELINE_WARN else "info"
    summary_parts = [f"{_text(event.get('detail-type'))}: {where} is {state}."]
    # Action-level events carry the action's own failure text in execution-result.
    failure = _text(_dict(detail.get("execution-result")).get("external-execution-summary"))
    if failure:
        summary_parts.append(failure)
    return Alert(
        title=f"CodePipeline {where}: {state}",
        severity=severity,
        summary=_join(summary_parts),
        source="codepipeline",
        time=time,
        resource=pipeline,
        fields=_fields(("Pipeline", pipeline), ("Stage", detail.get("stage")), ("Action", detail.get("action")),
                       ("State", state), ("Execution", execution), ("Account", account), ("Region", region)),
        links=(Link("Execution in console", codepipeline_execution_url(region, pipeline, execution)),),
    )


CODEBUILD_BAD = ("FAILED", "FAULT", "TIMED_OUT")


def format_codebuild(event: Mapping[str, Any], options: Options) -> Alert:
    detail = _dict(event.get("detail"))
    region, account, time = _event_common(event, options)
    project = _text(detail["project-name"])
    status = _text(detail.get("build-status"))
    build_arn = _text(detail.get("build-id"))
    build_id = build_arn.rsplit("/", 1)[-1]
    info = _dict(detail.get("additional-information"))
    logs = _dict(info.get("logs"))
    phase = _text(detail.get("current-phase"))
    context = _text(detail.get("current-phase-context")).strip("[]")
    failed_phases = [
        f"{_text(_dict(p).get('phase-type'))}: {_text(_dict(p).get('phase-status'))}"
        + (f" ({'; '.join(_text(c) for c in _list(_dict(p).get('phase-context')) if _text(c))})"
           if any(_text(c) for c in _list(_dict(p).get("phase-context"))) else "")
        for p in _list(info.get("phases"))
        if _text(_dict(p).get("phase-status")) not in ("", "SUCCEEDED")
    ]
    links = [Link("Build in console", codebuild_build_url(region, project, build_id))]
    if logs.get("group-name") and logs.get("stream-name"):
        links.append(Link("Build logs", log_group_url(region, _text(logs["group-name"]), _text(logs["stream-name"]))))
    return Alert(
        title=f"CodeBuild {project}: {status}",
        severity="critical" if status in CODEBUILD_BAD else "warning" if status == "STOPPED" else "info",
        summary=_join([f"Build {build_id} of {project} is {status}" + (f" in phase {phase}." if phase else "."),
                       "\n".join(failed_phases), context]),
        source="codebuild",
        time=time,
        resource=build_arn or project,
        fields=_fields(("Project", project), ("Status", status), ("Phase", phase),
                       ("Initiator", info.get("initiator")), ("Source version", info.get("source-version")),
                       ("Account", account), ("Region", region)),
        links=tuple(links),
    )


def format_alarm_event(event: Mapping[str, Any], options: Options) -> Alert:
    """``CloudWatch Alarm State Change`` from EventBridge, mapped onto the SNS alarm shape."""
    detail = _dict(event.get("detail"))
    state = _dict(detail.get("state"))
    previous = _dict(detail.get("previousState"))
    config = _dict(detail.get("configuration"))
    message = {
        "AlarmName": detail["alarmName"],
        "AlarmDescription": config.get("description"),
        "NewStateValue": state.get("value"),
        "OldStateValue": previous.get("value"),
        "NewStateReason": state.get("reason"),
        "StateChangeTime": state.get("timestamp") or event.get("time"),
        "AWSAccountId": event.get("account"),
        "AlarmArn": _list(event.get("resources"))[0] if _list(event.get("resources")) else "",
    }
    if config.get("alarmRule"):
        message["AlarmRule"] = config["alarmRule"]
    return format_alarm(message, options)


def _flatten(value: Any, prefix: str = "") -> list[tuple[str, Any]]:
    if isinstance(value, dict):
        found: list[tuple[str, Any]] = []
        for key, item in value.items():
            found.extend(_flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return found
    if isinstance(value, list):
        if all(not isinstance(item, dict | list) for item in value):
            return [(prefix, ", ".join(_text(item) for item in value))] if value else []
        return [(prefix, value)]
    return [(prefix, value)]


def format_generic_event(event: Mapping[str, Any], options: Options) -> Alert:
    """Any EventBridge event: its type, source, the first scalar fields of ``detail`` and the JSON."""
    region, account, time = _event_common(event, options)
    detail = event.get("detail")
    scalars = [(name, value) for name, value in _flatten(detail) if not isinstance(value, dict | list)]
    resources = [_text(item) for item in _list(event.get("resources"))]
    return Alert(
        title=_text(event.get("detail-type")) or "AWS event",
        severity="info",
        summary=f"Event from {_text(event.get('source')) or 'an unknown source'}"
        + (f" in account {account}, {region}." if account else "."),
        source=f"event:{_text(event.get('source'))}",
        time=time,
        resource=resources[0] if resources else "",
        fields=_fields(*scalars[:GENERIC_FIELDS], ("Resources", ", ".join(resources[:5]))),
        details=truncate(json.dumps(detail, indent=2, sort_keys=True, default=str), MAX_DETAILS_CHARS),
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


Formatter = Callable[[Mapping[str, Any], Options], Alert]

EVENT_FORMATTERS: dict[tuple[str, str], Formatter] = {
    ("aws.ec2", "EC2 Instance State-change Notification"): format_ec2_state,
    ("aws.guardduty", "GuardDuty Finding"): format_guardduty,
    ("aws.health", "AWS Health Event"): format_health,
    ("aws.codepipeline", "CodePipeline Pipeline Execution State Change"): format_codepipeline,
    ("aws.codepipeline", "CodePipeline Stage Execution State Change"): format_codepipeline,
    ("aws.codepipeline", "CodePipeline Action Execution State Change"): format_codepipeline,
    ("aws.codebuild", "CodeBuild Build State Change"): format_codebuild,
    ("aws.cloudwatch", "CloudWatch Alarm State Change"): format_alarm_event,
}


def is_eventbridge_event(event: Any) -> bool:
    return isinstance(event, dict) and "detail-type" in event and "detail" in event


def format_event(event: Mapping[str, Any], options: Options) -> Alert:
    """The formatter for ``(source, detail-type)``; the generic one when none matches or it trips."""
    formatter = EVENT_FORMATTERS.get((_text(event.get("source")), _text(event.get("detail-type"))))
    if formatter is not None:
        try:
            return formatter(event, options)
        except (KeyError, TypeError, ValueError, AttributeError, IndexError):
            pass  # an unexpected shape of a known type still gets a readable message
    return format_generic_event(event, options)


# --- dispatcher -----------------------------------------------------------------------------------


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


def format_sns_record(record: Mapping[str, Any], options: Options) -> Alert:
    sns = _dict(record.get("Sns"))
    message = _parse_json(sns.get("Message"))
    try:
        if is_alarm_message(message):
            return format_alarm(message, options)
        if is_action_report(message):
            return replace(format_action_report(message, options), time=_time(sns.get("Timestamp")))
    except (KeyError, TypeError, ValueError, AttributeError, IndexError):
        pass
    if is_eventbridge_event(message):
        return format_event(message, options)
    return format_sns_text(sns, message, options)


def is_sns_event(event: Any) -> bool:
    records = event.get("Records") if isinstance(event, dict) else None
    return (
        isinstance(records, list)
        and bool(records)
        and all(isinstance(r, dict) and r.get("EventSource") == "aws:sns" for r in records)
    )


def alerts_from_event(event: Any, options: Options) -> list[Alert]:
    """The alerts one Lambda invocation carries (none for a logs control message)."""
    if is_sns_event(event):
        return [format_sns_record(record, options) for record in event["Records"]]
    if isinstance(event, dict) and isinstance(event.get("awslogs"), dict):
        alert = format_logs(decode_logs_data(event["awslogs"].get("data")), options)
        return [alert] if alert is not None else []
    if is_eventbridge_event(event):
        return [format_event(event, options)]
    return [format_unknown(event, options)]


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:32]


def delivery_keys(event: Any, count: int) -> list[str]:
    """A stable identity for each of the ``count`` alerts of ``event``, the same on every retry.

    SNS records by their ``MessageId`` and message, EventBridge events by their ``id`` and content; anything
    else (a logs batch) by a digest of its content.
    """
    if is_sns_event(event) and len(event["Records"]) == count:
        keys = []
        for record in event["Records"]:
            sns = _dict(record.get("Sns"))
            keys.append(f"sns#{_text(sns.get('MessageId'))}#{_digest(sns.get('Message'))}")
        return keys
    if is_eventbridge_event(event) and count == 1:
        return [f"event#{_text(event.get('id'))}#{_digest(event)}"]
    digest = _digest(event)
    return [f"{digest}#{index}" for index in range(count)]
