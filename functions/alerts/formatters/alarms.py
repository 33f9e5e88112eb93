"""CloudWatch alarms: the SNS notification (metric, metric-math, composite) and the EventBridge state change."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from alerts.alert import Alert, Link, alarm_url, region_of_arn
from alerts.formatters.common import (
    Options,
    as_dict,
    as_list,
    as_text,
    aws_time,
    fields_of,
    joined,
)

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
    for item in as_list(items):
        item = as_dict(item)
        name = item.get("name", item.get("Name"))
        value = item.get("value", item.get("Value"))
        if name is not None:
            pairs.append(f"{name}={value}")
    return ", ".join(pairs)


def _metric_text(namespace: Any, name: Any, stat: Any, dimensions: Any) -> str:
    dims = _dimensions(dimensions)
    text = f"{as_text(namespace)} {as_text(name)}".strip()
    if stat:
        text += f" ({as_text(stat)})"
    if dims:
        text += f" [{dims}]"
    return text


def _alarm_condition(trigger: Mapping[str, Any]) -> str:
    operator = OPERATORS.get(as_text(trigger.get("ComparisonOperator")), as_text(trigger.get("ComparisonOperator")))
    threshold = trigger.get("Threshold")
    if threshold is None and trigger.get("ThresholdMetricId"):
        threshold = f"band {trigger['ThresholdMetricId']}"
    periods = trigger.get("EvaluationPeriods")
    datapoints = trigger.get("DatapointsToAlarm") or periods
    period = trigger.get("Period")
    text = f"{operator} {as_text(threshold)}".strip()
    if periods:
        text += f" for {as_text(datapoints)} of {as_text(periods)} periods"
        if period:
            text += f" of {as_text(period)} s"
    return text


def _metric_math_fields(queries: list[Any]) -> list[tuple[str, Any]]:
    """A metric-math alarm's expressions and the metrics they read."""
    expressions, inputs = [], []
    for query in map(as_dict, queries):
        expression = as_text(query.get("Expression"))
        if expression:
            label = as_text(query.get("Label") or query.get("Id"))
            expressions.append(f"{label} = {expression}" if label else expression)
        elif query.get("MetricStat"):
            stat = as_dict(query["MetricStat"])
            metric = as_dict(stat.get("Metric"))
            inputs.append(f"{as_text(query.get('Id'))}: " + _metric_text(
                metric.get("Namespace"), metric.get("MetricName"), stat.get("Stat"), metric.get("Dimensions")))
    return [("Expression", "; ".join(expressions)), ("Metrics", "; ".join(inputs))]


def format_alarm(message: Mapping[str, Any], options: Options) -> Alert:
    """A CloudWatch alarm notification: metric alarm, metric-math alarm or composite alarm."""
    name = as_text(message.get("AlarmName")) or "(unnamed alarm)"
    new = as_text(message.get("NewStateValue"))
    old = as_text(message.get("OldStateValue"))
    arn = as_text(message.get("AlarmArn"))
    region = region_of_arn(arn) or options.region
    trigger = as_dict(message.get("Trigger"))
    composite = "AlarmRule" in message
    fields: list[tuple[str, Any]] = [("State", f"{STATE_LABEL.get(old, old)} → {STATE_LABEL.get(new, new)}" if old
                                      else STATE_LABEL.get(new, new))]
    if composite:
        fields.append(("Rule", message.get("AlarmRule")))
        children = []
        for child in as_list(message.get("TriggeringChildren")):
            child = as_dict(child)
            child_name = as_text(child.get("Arn")).rsplit(":alarm:", 1)[-1]
            state = as_text(as_dict(child.get("State")).get("Value"))
            children.append(f"{child_name} ({state})" if state else child_name)
        fields.append(("Triggered by", ", ".join(children)))
    elif trigger.get("MetricName"):
        fields.append(("Metric", _metric_text(trigger.get("Namespace"), trigger.get("MetricName"),
                                              trigger.get("ExtendedStatistic") or trigger.get("Statistic"),
                                              trigger.get("Dimensions"))))
    elif trigger.get("Metrics"):
        fields.extend(_metric_math_fields(as_list(trigger.get("Metrics"))))
    if trigger:
        fields.append(("Condition", _alarm_condition(trigger)))
    fields.append(("Account", message.get("AWSAccountId")))
    fields.append(("Region", region or message.get("Region")))
    kind = "Composite alarm" if composite else "Alarm"
    return Alert(
        title=f"{STATE_LABEL.get(new, new or 'State change')}: {name}",
        severity=ALARM_SEVERITY.get(new, "warning"),
        summary=joined([as_text(message.get("AlarmDescription")), as_text(message.get("NewStateReason"))]),
        source="cloudwatch-alarm",
        time=aws_time(message.get("StateChangeTime")),
        resource=arn or name,
        fields=fields_of(*fields),
        links=(Link(f"{kind} in console", alarm_url(region, name)),),
        thread_key=f"alarm#{arn or name}",
        thread_role={"ALARM": "open", "OK": "resolve"}.get(new, ""),
    )


def _event_dimensions(dimensions: Any) -> list[dict[str, Any]]:
    return [{"name": key, "value": value} for key, value in as_dict(dimensions).items()]


def _event_query(query: dict[str, Any]) -> dict[str, Any]:
    stat = as_dict(query.get("metricStat"))
    metric = as_dict(stat.get("metric"))
    found: dict[str, Any] = {"Id": query.get("id"), "Label": query.get("label")}
    if query.get("expression"):
        found["Expression"] = query["expression"]
    if stat:
        found["MetricStat"] = {"Metric": {"Namespace": metric.get("namespace"), "MetricName": metric.get("name"),
                                          "Dimensions": _event_dimensions(metric.get("dimensions"))},
                               "Stat": stat.get("stat"), "Period": stat.get("period")}
    return found


def _event_trigger(metrics: list[Any]) -> dict[str, Any]:
    """EventBridge's ``configuration.metrics`` in the SNS notification's ``Trigger`` shape: one metric, or
    metric-math queries (the event carries no threshold or operator)."""
    queries = [_event_query(as_dict(item)) for item in metrics]
    if len(queries) == 1 and "MetricStat" in queries[0] and "Expression" not in queries[0]:
        stat = queries[0]["MetricStat"]
        return {"Namespace": stat["Metric"]["Namespace"], "MetricName": stat["Metric"]["MetricName"],
                "Statistic": stat["Stat"], "Dimensions": stat["Metric"]["Dimensions"], "Period": stat["Period"]}
    return {"Metrics": queries} if queries else {}


def format_alarm_event(event: Mapping[str, Any], options: Options) -> Alert:
    """``CloudWatch Alarm State Change`` from EventBridge, mapped onto the SNS alarm shape."""
    detail = as_dict(event.get("detail"))
    state = as_dict(detail.get("state"))
    previous = as_dict(detail.get("previousState"))
    config = as_dict(detail.get("configuration"))
    message = {
        "AlarmName": detail["alarmName"],
        "AlarmDescription": config.get("description"),
        "NewStateValue": state.get("value"),
        "OldStateValue": previous.get("value"),
        "NewStateReason": state.get("reason"),
        "StateChangeTime": state.get("timestamp") or event.get("time"),
        "AWSAccountId": event.get("account"),
        "AlarmArn": as_list(event.get("resources"))[0] if as_list(event.get("resources")) else "",
    }
    if config.get("alarmRule"):
        message["AlarmRule"] = config["alarmRule"]
    trigger = _event_trigger(as_list(config.get("metrics")))
    if trigger:
        message["Trigger"] = trigger
    return format_alarm(message, options)
