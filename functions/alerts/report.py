"""The outcome of one invocation: what was delivered, kept or left for a retry, as metrics and log lines."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aws_lambda_powertools.metrics import single_metric

from alerts.alert import Alert
from alerts.delivery import Destination, Result
from shared.observability import MetricUnit, logger, metrics


@dataclass
class Outcome:
    alerts: int = 0
    delivered: int = 0
    already_delivered: int = 0
    kept: int = 0
    unrouted: int = 0
    retrying: list[str] = field(default_factory=list)

    def as_result(self) -> dict[str, Any]:
        return {"alerts": self.alerts, "delivered": self.delivered, "already_delivered": self.already_delivered,
                "kept": self.kept, "unrouted": self.unrouted}


def count(name: str, destination_type: str, value: int = 1) -> None:
    """A metric with the destination type as its dimension."""
    with single_metric(name=name, unit=MetricUnit.Count, value=value,
                       namespace=getattr(metrics, "namespace", None)) as metric:
        metric.add_dimension(name="DestinationType", value=destination_type)


def count_total(name: str, value: int) -> None:
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)


def _fields(alert: Alert, destination: Destination, result: Result) -> dict[str, Any]:
    return {"destination": destination.name, "status": result.status, "attempts": result.attempts,
            "alert_title": alert.title, "alert_source": alert.source, "severity": alert.severity}


def delivered(alert: Alert, destination: Destination, result: Result) -> None:
    count("AlertsSent", destination.type)
    logger.info("alert delivered", extra=_fields(alert, destination, result))


def already_delivered(alert: Alert, destination: Destination) -> None:
    count("AlertsAlreadyDelivered", destination.type)
    logger.info("alert already delivered or kept by an earlier attempt; not sent again",
                extra={"destination": destination.name, "alert_title": alert.title})


def kept(alert: Alert, destination: Destination, result: Result, reason: str) -> None:
    """A destination could not take the alert: it is in the undelivered queue."""
    count("AlertsKept", destination.type)
    extra = {**_fields(alert, destination, result), "reason": reason}
    if result.gone:
        count("WebhookGone", destination.type)
        logger.error("webhook no longer exists (HTTP 404/410): replace its URL in the destinations secret; "
                     "the message is kept in the undelivered queue", extra={**extra, "webhook_gone": True})
    else:
        logger.error("alert not delivered; the message is kept in the undelivered queue", extra=extra)


def unrouted(alert: Alert) -> None:
    """No destination's filters matched and no default destination took it."""
    count_total("AlertsUnrouted", 1)
    logger.warning("alert matched no destination (add a destination with \"default\": true to catch these)",
                   extra={"alert_title": alert.title, "alert_source": alert.source, "severity": alert.severity,
                          "route_sources": list(alert.route.sources), "account": alert.route.account,
                          "region": alert.route.region, "route_name": alert.route.name})


def invalid_destination(problem: str) -> None:
    """One entry of the destinations secret is invalid: skipped, the others keep working."""
    count_total("DestinationsInvalid", 1)
    logger.error("a destination in the secret is invalid and is skipped until fixed", extra={"reason": problem})


def retrying(alert: Alert, destination: Destination, reason: str) -> None:
    count("AlertsFailed", destination.type)
    logger.warning("alert not delivered yet; Lambda retries the invocation for this destination only",
                   extra={"destination": destination.name, "alert_title": alert.title, "reason": reason})
