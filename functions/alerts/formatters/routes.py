"""What routing looks at, read from each kind of message: source names, account, region, name."""

from __future__ import annotations

from collections.abc import Callable

from alerts.alert import Route, region_of_arn
from alerts.decode import Message
from alerts.formatters.common import as_dict, as_text


def _arn_account(arn: str) -> str:
    parts = arn.split(":")
    return parts[4] if len(parts) > 5 and parts[0] == "arn" else ""


def _alarm(message: Message, region: str) -> Route:
    body = as_dict(message.body)
    arn = as_text(body.get("AlarmArn"))
    return Route(("alarm",), as_text(body.get("AWSAccountId")) or _arn_account(arn), region_of_arn(arn) or region,
                 as_text(body.get("AlarmName")))


def _report(message: Message, region: str) -> Route:
    body = as_dict(message.body)
    context = as_dict(as_dict(body.get("metadata")).get("additionalContext"))
    topic = as_text(message.envelope.get("TopicArn"))
    return Route(("report",), as_text(context.get("account")) or _arn_account(topic),
                 as_text(context.get("region")) or region_of_arn(topic) or region,
                 as_text(as_dict(body.get("content")).get("title")))


def _event(message: Message, region: str) -> Route:
    event = as_dict(message.body)
    source = as_text(event.get("source"))
    detail = as_dict(event.get("detail"))
    if source == "aws.cloudwatch" and detail.get("alarmName"):
        return Route(("alarm", source), as_text(event.get("account")), as_text(event.get("region")) or region,
                     as_text(detail.get("alarmName")))
    return Route((source,), as_text(event.get("account")), as_text(event.get("region")) or region, "")


def _logs(message: Message, region: str) -> Route:
    body = as_dict(message.body)
    return Route(("logs",), as_text(body.get("owner")), region, as_text(body.get("logGroup")))


def _sns(message: Message, region: str) -> Route:
    topic = as_text(message.envelope.get("TopicArn"))
    subject = as_text(message.envelope.get("Subject"))
    return Route(("sns",), _arn_account(topic), region_of_arn(topic) or region, subject)


ROUTES: dict[str, Callable[[Message, str], Route]] = {
    "alarm": _alarm, "report": _report, "event": _event, "logs": _logs, "sns": _sns,
}


def route_of(message: Message, region: str) -> Route:
    """The route of ``message``; ``region`` is the function's own, for messages that name none."""
    reader: Callable[[Message, str], Route] | None = ROUTES.get(message.kind)
    if reader is None:
        return Route(("unknown",), "", region, "")
    try:
        return reader(message, region)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError):
        return Route((message.kind,), "", region, "")


