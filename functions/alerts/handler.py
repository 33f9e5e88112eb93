"""Entry point of the alerts function: event -> alerts -> destinations.

Environment (read once per invocation by :meth:`Config.from_env`):

- ``DESTINATIONS_SECRET_ARN``: the Secrets Manager secret holding ``{"destinations": [...]}``;
- ``MIN_SEVERITY``: ``info`` | ``warning`` | ``critical`` (default ``info``): alerts below it are dropped;
- ``MAX_LOG_LINES``: log lines shown per CloudWatch Logs batch (default 20);
- ``HTTP_TIMEOUT_SECONDS``: connect/read timeout of one webhook call (default 5).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import requests
from aws_lambda_powertools.metrics import single_metric

from alerts import aws, delivery
from alerts.alert import SEVERITIES, Alert, at_least
from alerts.render import render
from alerts.sources import BadEvent, Options, alerts_from_event
from shared.config import env_choice, env_int, env_str
from shared.observability import MetricUnit, logger, metrics, tracer


class DeliveryError(RuntimeError):
    """At least one destination did not take an alert; raised after trying every destination."""


@dataclass(frozen=True)
class Config:
    secret_arn: str
    min_severity: str = "info"
    max_log_lines: int = 20
    http_timeout_seconds: int = 5
    region: str = "us-east-1"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Config:
        return cls(
            secret_arn=env_str("DESTINATIONS_SECRET_ARN", env=env),
            min_severity=env_choice("MIN_SEVERITY", SEVERITIES, "info", env=env),
            max_log_lines=env_int("MAX_LOG_LINES", 20, minimum=1, maximum=200, env=env),
            http_timeout_seconds=env_int("HTTP_TIMEOUT_SECONDS", 5, minimum=1, maximum=60, env=env),
            region=env_str("AWS_REGION", env_str("AWS_DEFAULT_REGION", "us-east-1", env=env), env=env),
        )

    def policy(self, remaining: Callable[[], float] | None = None) -> delivery.Policy:
        return delivery.Policy(timeout=float(self.http_timeout_seconds), retry_after_cap=5.0, remaining=remaining)


_session: requests.Session | None = None


def _http() -> requests.Session:
    """One session per execution environment: warm invocations reuse the TLS connection."""
    global _session
    if _session is None:
        _session = requests.Session()
    return _session


def _count(name: str, destination_type: str, value: int = 1) -> None:
    with single_metric(name=name, unit=MetricUnit.Count, value=value,
                       namespace=getattr(metrics, "namespace", None)) as metric:
        metric.add_dimension(name="DestinationType", value=destination_type)


def deliver(alerts: list[Alert], destinations: list[delivery.Destination], policy: delivery.Policy,
            session: requests.Session) -> list[delivery.Result]:
    """Send every alert to every destination whose ``min_severity`` it meets; never stops early."""
    results = []
    for alert in alerts:
        for destination in destinations:
            if not at_least(alert.severity, destination.min_severity):
                continue
            result = delivery.post(session, destination, render(destination.type, alert), policy)
            results.append(result)
            log = {"destination": result.destination, "status": result.status, "attempts": result.attempts,
                   "alert_title": alert.title, "alert_source": alert.source, "severity": alert.severity}
            if result.ok:
                _count("AlertsSent", destination.type)
                logger.info("alert delivered", extra=log)
            else:
                _count("AlertsFailed", destination.type)
                if result.gone:
                    _count("WebhookGone", destination.type)
                    logger.error("webhook no longer exists (HTTP 404/410): replace its URL in the destinations "
                                 "secret", extra={**log, "reason": result.reason, "webhook_gone": True})
                else:
                    logger.error("alert not delivered", extra={**log, "reason": result.reason})
    return results


def process(event: Any, config: Config, *, policy: delivery.Policy | None = None,
            session: requests.Session | None = None, remaining: Callable[[], float] | None = None) -> dict[str, Any]:
    """Everything the handler does, with the delivery policy and HTTP session injectable."""
    try:
        alerts = alerts_from_event(event, Options(region=config.region, max_log_lines=config.max_log_lines))
    except BadEvent as exc:
        logger.warning("unreadable event dropped", extra={"reason": str(exc)})
        metrics.add_metric(name="BadEvents", unit=MetricUnit.Count, value=1)
        return {"alerts": 0, "delivered": 0, "dropped": "bad event"}
    metrics.add_metric(name="AlertsReceived", unit=MetricUnit.Count, value=len(alerts))
    wanted = [alert for alert in alerts if at_least(alert.severity, config.min_severity)]
    if len(wanted) < len(alerts):
        metrics.add_metric(name="AlertsBelowMinSeverity", unit=MetricUnit.Count, value=len(alerts) - len(wanted))
    if not wanted:
        logger.info("nothing to send", extra={"alerts": len(alerts), "min_severity": config.min_severity})
        return {"alerts": 0, "delivered": 0}
    destinations = delivery.parse_destinations(aws.read_destinations_secret(config.secret_arn))
    if not destinations:
        logger.warning("the destinations secret lists no destination: alerts not delivered (see docs/alerts.md)",
                       extra={"alerts": len(wanted)})
        metrics.add_metric(name="AlertsUndelivered", unit=MetricUnit.Count, value=len(wanted))
        return {"alerts": len(wanted), "delivered": 0}
    results = deliver(wanted, destinations, policy or config.policy(remaining), session or _http())
    failed = [result for result in results if not result.ok]
    if failed:
        raise DeliveryError(
            f"{len(failed)} of {len(results)} deliveries failed: "
            + "; ".join(f"{result.destination} {result.reason}" for result in failed)
        )
    return {"alerts": len(wanted), "delivered": len(results)}


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return process(event, Config.from_env(), remaining=lambda: context.get_remaining_time_in_millis() / 1000)
