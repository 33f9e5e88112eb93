"""Orchestration: event -> alerts -> each destination at most once, recorded, or kept.

For every (alert, destination) the delivery is recorded in the delivery table (Powertools idempotency),
so a retried invocation sends only what is still missing:

- delivered (2xx): recorded; a retry returns the record and sends nothing;
- permanently refused (404/410 gone, other 4xx): kept in the undelivered queue with the rendered message
  and the reason, recorded, counted; the invocation does not fail because of it;
- transiently failed (timeout, 429, 5xx after the in-invocation retries): the record is removed and the
  invocation raises :class:`DeliveryError` after trying every other destination, so Lambda retries it;
  on the event's last invocation (``delivery_attempts``) the message is kept instead.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import requests
from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig, idempotent_function
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyPersistenceLayerError,
)
from aws_lambda_powertools.utilities.idempotency.persistence.datarecord import DataRecord
from botocore.exceptions import ClientError

from alerts import aws, report
from alerts.alert import Alert, at_least, with_origin
from alerts.config import Config
from alerts.decode import BadEvent
from alerts.delivery import Destination, DestinationsError, Policy, Result, post, read_destinations
from alerts.formatters import Options, keyed_alerts
from alerts.render import render
from alerts.routing import route
from alerts.slack_app import SLACK_API, SlackApp
from shared.errors import is_transient
from shared.observability import logger
from shared.targets_aws import own_account_id
from shared.timeutil import iso, utcnow


class DeliveryError(RuntimeError):
    """At least one destination did not take an alert yet; raised after trying every destination."""


class RetryLater(RuntimeError):
    """A transient failure of one destination: remove its record and let Lambda retry."""


@dataclass(frozen=True)
class Ports:
    """What a run talks to; the handler builds the live ones, tests may pass others."""

    read_secret: Callable[[str], str]
    table: aws.DeliveryTable
    queue: aws.UndeliveredQueue
    session: requests.Session
    policy: Policy
    context: Any = None
    slack_api_url: str = SLACK_API
    own_account: str = ""  # named by messages that carry no account
    account_name: Callable[[str], str | None] = lambda _account: None


def _mark_replayed(response: Any, idempotent_data: DataRecord) -> Any:
    return {**response, "replayed": True} if isinstance(response, dict) else response


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:24]


class Sender:
    """Sends one alert to one destination at most once (across invocations), or keeps it."""

    def __init__(self, config: Config, ports: Ports) -> None:
        self.config = config
        self.ports = ports
        self.idempotency = IdempotencyConfig(expires_after_seconds=aws.RECORD_TTL_SECONDS,
                                             response_hook=_mark_replayed)
        if ports.context is not None:
            self.idempotency.register_lambda_context(ports.context)
        self.slack = SlackApp(ports.table, ports.policy, ports.slack_api_url)

    def send(self, key: str, alert: Alert, destination: Destination) -> dict[str, Any]:
        """``{"status": "delivered" | "kept", ...}``, ``"replayed": True`` when an earlier attempt did it."""
        identity = {"alert": key, "destination": _digest(destination.url)}
        payload = render(destination.type, alert)

        def attempt(delivery: dict[str, str]) -> dict[str, Any]:
            return self._attempt(_digest(f"{delivery['alert']}|{delivery['destination']}"), key, alert,
                                 destination, payload)

        once = idempotent_function(data_keyword_argument="delivery", persistence_store=self.ports.table.persistence,
                                   config=self.idempotency, key_prefix="alerts-delivery")(attempt)
        return dict(once(delivery=identity))

    def _attempt(self, record_key: str, key: str, alert: Alert, destination: Destination,
                 payload: dict[str, Any]) -> dict[str, Any]:
        if destination.type == "slack-app":
            result = self.slack.post(destination, alert, payload)
        else:
            result = post(self.ports.session, destination, payload, self.ports.policy)
        if result.ok:
            report.delivered(alert, destination, result)
            return {"status": "delivered", "http": result.status, "attempts": result.attempts}
        reason = result.reason
        if result.transient:
            failures = self.ports.table.count_failure(record_key)
            if failures < self.config.delivery_attempts:
                report.retrying(alert, destination, reason)
                raise RetryLater(reason)
            reason = f"{reason} (on each of {failures} invocations)"
        self._keep(key, alert, destination, payload, result, reason)
        return {"status": "kept", "http": result.status, "attempts": result.attempts, "reason": reason}

    def _keep(self, key: str, alert: Alert, destination: Destination, payload: dict[str, Any], result: Result,
              reason: str) -> None:
        self.ports.queue.keep({
            "kind": "undelivered-alert",
            "destination": destination.name,
            "type": destination.type,
            "status": result.status,
            "reason": reason,
            "gone": result.gone,
            "keptAt": iso(utcnow()),
            "alert": {"key": key, "title": alert.title, "severity": alert.severity, "source": alert.source,
                      "time": alert.time, "resource": alert.resource},
            "message": payload,
        })
        report.kept(alert, destination, result, reason)


def _retryable(exc: Exception) -> bool:
    if isinstance(exc, RetryLater | IdempotencyAlreadyInProgressError | IdempotencyPersistenceLayerError):
        return True
    return isinstance(exc, ClientError) and is_transient(exc)


def _deliver_one(sender: Sender, key: str, alert: Alert, destination: Destination, outcome: report.Outcome) -> None:
    try:
        sent = sender.send(key, alert, destination)
    except Exception as exc:
        if not _retryable(exc):
            raise
        outcome.retrying.append(f"{destination.name} {exc}")
        return
    if sent.get("replayed"):
        outcome.already_delivered += 1
        report.already_delivered(alert, destination)
    elif sent["status"] == "delivered":
        outcome.delivered += 1
    else:
        outcome.kept += 1


def deliver(keyed: list[tuple[str, Alert]], destinations: list[Destination], sender: Sender) -> report.Outcome:
    """Every alert to every destination its route matches (``alerts.routing``); never stops early."""
    outcome = report.Outcome(alerts=len(keyed))
    filters = [destination.filters for destination in destinations]
    for key, alert in keyed:
        routed = route(alert.severity, alert.route, filters)
        if not routed.indexes:
            outcome.unrouted += 1
            report.unrouted(alert)
        for index in routed.indexes:
            _deliver_one(sender, key, alert, destinations[index], outcome)
    return outcome


def _destinations(ports: Ports, config: Config) -> list[Destination]:
    """The valid destinations; invalid entries are logged and counted and the others keep working."""
    found = read_destinations(ports.read_secret(config.secret_arn))
    for problem in found.problems:
        report.invalid_destination(problem)
    if found.problems and not found.valid:
        raise DestinationsError("no valid destination in the secret: " + "; ".join(found.problems))
    return found.valid


def run(event: Any, config: Config, ports: Ports) -> dict[str, Any]:
    """Everything one invocation does."""
    try:
        every = keyed_alerts(event, Options(region=config.region, max_log_lines=config.max_log_lines))
    except BadEvent as exc:
        logger.warning("unreadable event dropped", extra={"reason": str(exc)})
        report.count_total("BadEvents", 1)
        return {"alerts": 0, "delivered": 0, "dropped": "bad event"}
    report.count_total("AlertsReceived", len(every))
    keyed = [(key, with_origin(alert, ports.own_account, ports.account_name)) for key, alert in every
             if at_least(alert.severity, config.min_severity)]
    if len(keyed) < len(every):
        report.count_total("AlertsBelowMinSeverity", len(every) - len(keyed))
    if not keyed:
        logger.info("nothing to send", extra={"alerts": len(every), "min_severity": config.min_severity})
        return report.Outcome().as_result()
    destinations = _destinations(ports, config)
    if not destinations:
        logger.warning("the destinations secret lists no destination: alerts not delivered (see docs/alerts.md)",
                       extra={"alerts": len(keyed)})
        report.count_total("AlertsUndelivered", len(keyed))
        return report.Outcome(alerts=len(keyed)).as_result()
    outcome = deliver(keyed, destinations, Sender(config, ports))
    if outcome.retrying:
        raise DeliveryError(f"{len(outcome.retrying)} deliveries to retry: " + "; ".join(outcome.retrying))
    return outcome.as_result()


_session: requests.Session | None = None


def http_session() -> requests.Session:
    """One session per execution environment: warm invocations reuse the TLS connection."""
    global _session
    if _session is None:
        _session = requests.Session()
    return _session


def live_ports(config: Config, context: Any) -> Ports:
    remaining = (lambda: context.get_remaining_time_in_millis() / 1000) if context is not None else None
    return Ports(read_secret=aws.read_destinations_secret, table=aws.DeliveryTable(config.delivery_table),
                 queue=aws.UndeliveredQueue(config.undelivered_queue_url), session=http_session(),
                 policy=config.policy(remaining), context=context, own_account=own_account_id(context),
                 account_name=aws.account_names(not config.targets.local_only))
