"""IAM access-key rotation (Secrets Manager rotation steps) and the stale-key sweep (scheduled).

One function, two triggers:

- Secrets Manager rotation: ``{"Step": "createSecret" | "setSecret" | "testSecret" | "finishSecret",
  "SecretId": ..., "ClientRequestToken": ...}``; a failing step raises so Secrets Manager marks the
  rotation failed (``AWSCURRENT`` stays where it was);
- the scheduled sweep: an EventBridge scheduled event (rule or Scheduler) whose ``time`` is "now".

Anything else is logged as a warning, counted (``IgnoredEvents``) and not retried.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from key_rotation import aws, sweep
from key_rotation.policy import Thresholds
from key_rotation.rotation import BadRotationEvent, RotationError, RotationEvent, Rotator, StepResult
from shared.clients import client
from shared.config import ConfigError, env_int, env_json, env_mode, env_str
from shared.observability import MetricUnit, logger, metrics, tracer
from shared.reports import ActionReport, ReportPublisher
from shared.timeutil import event_time, iso, utcnow

AUTOMATION = "key_rotation"
# testSecret: how often and how far apart to try the new key (IAM keys take seconds to become usable).
TEST_ATTEMPTS = 6
TEST_DELAY_SECONDS = 2.0
# The wait between attempts; tests replace it to stay fast.
SLEEP: Callable[[float], None] = time.sleep


@dataclass(frozen=True)
class Config:
    """The function's environment, read once per invocation."""

    mode: str = "report"
    thresholds: Thresholds = field(default_factory=Thresholds)
    max_changes: int = 20
    exempt_group: str = ""
    exempt_tag: tuple[str, str] | None = None
    managed_secrets: dict[str, str] = field(default_factory=dict)  # user name -> secret ARN
    notify_topic_arn: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Config:
        try:
            thresholds = Thresholds(
                warn_after_days=env_int("WARN_AFTER_DAYS", 80, minimum=1, env=env),
                deactivate_after_days=env_int("DEACTIVATE_AFTER_DAYS", 90, minimum=1, env=env),
                delete_after_days=env_int("DELETE_AFTER_DAYS", 120, minimum=1, env=env),
                grace_days=env_int("GRACE_DAYS", 7, minimum=0, env=env),
            )
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        tag = env_str("EXEMPT_TAG", "", env=env)
        exempt_tag = None
        if tag:
            key, sep, value = tag.partition("=")
            if not sep or not key.strip():
                raise ConfigError(f"EXEMPT_TAG={tag!r} is not 'Key=Value'")
            exempt_tag = (key.strip(), value.strip())
        managed = env_json("MANAGED_SECRETS", {}, env=env)
        if not isinstance(managed, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in managed.items()
        ):
            raise ConfigError("MANAGED_SECRETS must be a JSON object of user name -> secret ARN")
        return cls(
            mode=env_mode("report", env=env),
            thresholds=thresholds,
            max_changes=env_int("MAX_CHANGES", 20, minimum=0, env=env),
            exempt_group=env_str("EXEMPT_GROUP", "", env=env),
            exempt_tag=exempt_tag,
            managed_secrets=dict(managed),
            notify_topic_arn=env_str("NOTIFY_TOPIC_ARN", "", env=env) or None,
        )


def is_scheduled(event: Any) -> bool:
    """An EventBridge scheduled event (rule: "Scheduled Event"; Scheduler: "Scheduled Event" too)."""
    return isinstance(event, Mapping) and (
        event.get("detail-type") == "Scheduled Event" or event.get("source") in ("aws.events", "aws.scheduler")
    )


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    config = Config.from_env()
    if isinstance(event, Mapping) and "Step" in event:
        return rotate(event, config)
    if is_scheduled(event):
        return run_sweep(event, config)
    logger.warning("ignored event: neither a rotation step nor a scheduled event",
                   extra={"reason": "unknown event shape", "keys": sorted(event)[:20] if isinstance(event, dict) else
                          type(event).__name__})
    metrics.add_metric(name="IgnoredEvents", unit=MetricUnit.Count, value=1)
    return {"ignored": True}


def _publisher(config: Config) -> ReportPublisher:
    return ReportPublisher(client("sns"), config.notify_topic_arn)


def rotate(event: Mapping[str, Any], config: Config) -> dict[str, Any]:
    try:
        parsed = RotationEvent.parse(event)
    except BadRotationEvent as exc:
        logger.warning("ignored rotation event", extra={"reason": str(exc)})
        metrics.add_metric(name="IgnoredEvents", unit=MetricUnit.Count, value=1)
        return {"ignored": True, "reason": str(exc)}
    expected = {arn: user for user, arn in config.managed_secrets.items()}
    rotator = Rotator(
        aws.Aws(), expected_users=expected, clock=utcnow,
        test_attempts=TEST_ATTEMPTS, test_delay_seconds=TEST_DELAY_SECONDS, sleep=lambda s: SLEEP(s),
        grace_days=config.thresholds.grace_days,
    )
    log = {"step": parsed.step, "secretId": parsed.secret_id, "token": parsed.token}
    try:
        result = rotator.run(parsed)
    except RotationError as exc:
        logger.error("rotation step failed", extra={**log, "reason": str(exc)})
        metrics.add_metric(name="RotationFailures", unit=MetricUnit.Count, value=1)
        raise
    except Exception:  # transient (throttling, 5xx): Secrets Manager retries the rotation
        logger.exception("rotation step failed on an AWS error", extra=log)
        metrics.add_metric(name="RotationFailures", unit=MetricUnit.Count, value=1)
        raise
    logger.info("rotation step done", extra={**log, "outcome": result.outcome, "detail": result.detail})
    metrics.add_metric(name="RotationSteps", unit=MetricUnit.Count, value=1)
    _report_rotation(parsed, result, config)
    return {"step": result.step, "outcome": result.outcome, "detail": result.detail}


def _report_rotation(event: RotationEvent, result: StepResult, config: Config) -> None:
    report: ActionReport | None = None
    if result.step == "createSecret" and result.deleted_key_ids:
        metrics.add_metric(name="KeysDeleted", unit=MetricUnit.Count, value=len(result.deleted_key_ids))
        deleted = ", ".join(f"`{key_id}`" for key_id in result.deleted_key_ids)
        report = ActionReport(
            automation=AUTOMATION, mode="enforce",
            title=f"Deleted {len(result.deleted_key_ids)} never-current or inactive key(s) to rotate",
            description=f"Rotation of `{event.secret_id}`: IAM allows two keys per user. Deleted {deleted} "
            "(inactive and not AWSCURRENT, or created by an earlier rotation that never finished) and created "
            f"key `{result.new_key_id}` as AWSPENDING.",
            event_type="AccessKeyDeleted", related_resources=[event.secret_id], keywords=["iam", "rotation"],
            context={"secretId": event.secret_id, "deletedKeyIds": list(result.deleted_key_ids),
                     "newKeyId": result.new_key_id},
        )
    elif result.step == "finishSecret" and result.outcome == "finished":
        metrics.add_metric(name="KeysRotated", unit=MetricUnit.Count, value=1)
        grace = config.thresholds.grace_days
        report = ActionReport(
            automation=AUTOMATION, mode="enforce",
            title=f"Rotated access key: {result.new_key_id} is now current",
            description=f"Secret `{event.secret_id}`: AWSCURRENT now holds key `{result.new_key_id}`. "
            f"The previous key `{result.old_key_id or '(none)'}` stays active for {grace} days; the daily sweep "
            "deactivates it after that, unless it is still used.",
            event_type="AccessKeyRotated", related_resources=[event.secret_id], keywords=["iam", "rotation"],
            context={"secretId": event.secret_id, "newKeyId": result.new_key_id, "previousKeyId": result.old_key_id,
                     "at": iso(utcnow())},
        )
    if report is not None:
        _publisher(config).publish(report)


def run_sweep(event: Mapping[str, Any], config: Config) -> dict[str, Any]:
    now = event_time(event)
    settings = sweep.SweepSettings(
        mode=config.mode, thresholds=config.thresholds, max_changes=config.max_changes,
        exempt_group=config.exempt_group, exempt_tag=config.exempt_tag, managed_secrets=config.managed_secrets,
    )
    result = sweep.run_sweep(aws.Aws(), settings, now)
    counts = result.counts()
    metrics.add_metric(name="KeysDeactivated", unit=MetricUnit.Count, value=counts["deactivated"])
    metrics.add_metric(name="KeysDeleted", unit=MetricUnit.Count, value=counts["deleted"])
    metrics.add_metric(name="KeysWarned", unit=MetricUnit.Count, value=counts["warned"] + counts["held"])
    if result.plan.guard_tripped:
        metrics.add_metric(name="GuardTripped", unit=MetricUnit.Count, value=1)
        logger.warning("MAX_CHANGES guard tripped: nothing changed",
                       extra={"reason": "too many changes", "maxChanges": config.max_changes})
    report = sweep.build_report(result, now)
    message_id = _publisher(config).publish(report) if report is not None else None
    logger.info("sweep done", extra={"now": iso(now), "mode": config.mode, **counts, "reportId": message_id})
    return {"now": iso(now), "mode": config.mode, **counts, "guardTripped": result.plan.guard_tripped,
            "reported": report is not None}
