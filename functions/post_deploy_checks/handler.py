"""Post-deployment checks: pass or fail a CodePipeline job or a CodeDeploy lifecycle hook.

Two triggers:

- a CodePipeline Lambda invoke action (event ``{"CodePipeline.job": {...}}``): the checks come from the
  action's ``UserParameters``; the result is reported with PutJobSuccessResult / PutJobFailureResult;
- a CodeDeploy lifecycle hook (event ``{"DeploymentId": ..., "LifecycleEventHookExecutionId": ...}``): the
  checks come from the ``CHECKS`` environment variable; the result is reported with
  PutLifecycleEventHookExecutionStatus (Succeeded / Failed).

Every path that has a job (or hook) to answer reports exactly once, in one place at the end: malformed
parameters and unexpected errors become failures rather than a pipeline left hanging. The job event's
``artifactCredentials`` and header values from secrets are never logged.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import BotoCoreError, ClientError

from post_deploy_checks import aws, checks, runner
from post_deploy_checks.checks import ChecksConfig, ConfigurationError, Outcome
from shared.clients import client
from shared.config import ConfigError, env_int, env_list, env_str
from shared.errors import error_code
from shared.observability import MetricUnit, logger, metrics, tracer
from shared.reports import ActionReport, ReportPublisher
from shared.text import truncate
from shared.timeutil import utcnow

AUTOMATION = "post_deploy_checks"
# Seconds kept free after the checks (at most a fifth of the remaining time), to read alarms and report the
# result before the function times out.
REPORT_MARGIN_SECONDS = 10
# The wait between attempts; tests replace it to stay fast.
SLEEP: Callable[[float], Awaitable[None]] = asyncio.sleep


@dataclass(frozen=True)
class Config:
    """The function's environment, read once per invocation."""

    checks: str | None = None
    header_secrets: tuple[str, ...] = ()
    secrets_max_age_seconds: int = 300
    notify_topic_arn: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Config:
        checks_json = env_str("CHECKS", "", env=env)
        topic = env_str("NOTIFY_TOPIC_ARN", "", env=env)
        return cls(
            checks=checks_json or None,
            header_secrets=tuple(env_list("HEADER_SECRETS", [], env=env)),
            secrets_max_age_seconds=env_int("SECRETS_MAX_AGE_SECONDS", 300, minimum=0, maximum=86_400, env=env),
            notify_topic_arn=topic or None,
        )


@dataclass(frozen=True)
class JobResult:
    """What to report for one CodePipeline job: exactly one of success, continuation or failure."""

    kind: str  # "success" | "continue" | "failure"
    summary: str = ""
    failure_type: str = ""
    message: str = ""
    continuation_token: str | None = None
    output_variables: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"result": self.kind}
        if self.kind == "failure":
            body.update(type=self.failure_type, message=self.message)
        else:
            body["summary"] = self.summary
        if self.output_variables:
            body["outputVariables"] = self.output_variables
        return body


@logger.inject_lambda_context(log_event=False, clear_state=True)  # the event carries artifactCredentials
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if isinstance(event, Mapping) and isinstance(event.get("CodePipeline.job"), Mapping):
        return handle_codepipeline_job(event["CodePipeline.job"], context)
    if isinstance(event, Mapping) and "DeploymentId" in event and "LifecycleEventHookExecutionId" in event:
        return handle_codedeploy_hook(event, context)
    keys = sorted(str(key) for key in event) if isinstance(event, Mapping) else []
    logger.warning("ignored an event that is neither a CodePipeline job nor a CodeDeploy lifecycle hook",
                   extra={"reason": "unrecognised event", "event_keys": keys})
    metrics.add_metric(name="UnrecognisedEvents", unit=MetricUnit.Count, value=1)
    return {"result": "ignored", "reason": "unrecognised event"}


# --------------------------------------------------------------------------- CodePipeline


def handle_codepipeline_job(job: Mapping[str, Any], context: LambdaContext) -> dict[str, Any]:
    job_id = job.get("id")
    if not isinstance(job_id, str) or not job_id:
        logger.warning("ignored a CodePipeline job without an id", extra={"reason": "job id missing"})
        metrics.add_metric(name="UnrecognisedEvents", unit=MetricUnit.Count, value=1)
        return {"result": "ignored", "reason": "job id missing"}
    raw_data = job.get("data")
    data: Mapping[str, Any] = raw_data if isinstance(raw_data, Mapping) else {}
    token = data.get("continuationToken") if isinstance(data.get("continuationToken"), str) else None
    request_id = getattr(context, "aws_request_id", None)
    logger.append_keys(job_id=job_id)
    config: Config | None = None
    try:
        config = Config.from_env()
        action = data.get("actionConfiguration") or {}
        user_parameters = (action.get("configuration") or {}).get("UserParameters")
        parsed = checks.parse_config(user_parameters, source="UserParameters")
        decision = checks.stabilize_decision(utcnow(), parsed.stabilize_seconds, token)
        if isinstance(decision, checks.Wait):
            logger.info("waiting for the deployment to stabilize; CodePipeline will invoke again",
                        extra={"ready_at": decision.ready_at.isoformat(), "continued": bool(token)})
            result = JobResult("continue", summary=f"waiting until {decision.ready_at.isoformat()} before "
                               "running the checks", continuation_token=decision.token)
        else:
            outcome = run_all(parsed, config, context)
            result = _job_result(outcome)
    except ConfigurationError as exc:
        logger.warning("the checks configuration is malformed", extra={"reason": str(exc)})
        metrics.add_metric(name="ConfigurationErrors", unit=MetricUnit.Count, value=1)
        result = JobResult("failure", failure_type="ConfigurationError", message=str(exc))
    except ConfigError as exc:
        logger.warning("the function's environment is malformed", extra={"reason": str(exc)})
        metrics.add_metric(name="ConfigurationErrors", unit=MetricUnit.Count, value=1)
        result = JobResult("failure", failure_type="ConfigurationError", message=f"function environment: {exc}")
    except Exception as exc:
        logger.exception("the checks failed unexpectedly")
        result = JobResult("failure", failure_type="JobFailed",
                           message=truncate(f"post_deploy_checks failed unexpectedly: "
                                                    f"{type(exc).__name__}: {exc}", checks.MAX_FAILURE_MESSAGE))
    _report_job(job_id, result, request_id)  # the one place the job is answered
    if result.kind == "failure":
        _publish_failure(config, f"CodePipeline job {job_id}", result.message, job_id)
    return result.as_dict()


def _job_result(outcome: Outcome) -> JobResult:
    if outcome.passed:
        return JobResult("success", summary=outcome.summary, output_variables=outcome.output_variables)
    return JobResult("failure", failure_type="JobFailed", message=outcome.failure_message, summary=outcome.summary)


def _report_job(job_id: str, result: JobResult, request_id: str | None) -> None:
    if result.kind == "failure":
        aws.put_job_failure(job_id, result.failure_type, result.message, request_id)
    else:
        aws.put_job_success(job_id, continuation_token=result.continuation_token, summary=result.summary,
                            external_execution_id=request_id, output_variables=result.output_variables)
    logger.info("reported the job result", extra={"result": result.kind, "failure_type": result.failure_type})


# --------------------------------------------------------------------------- CodeDeploy


def handle_codedeploy_hook(event: Mapping[str, Any], context: LambdaContext) -> dict[str, Any]:
    deployment_id = str(event["DeploymentId"])
    hook_id = str(event["LifecycleEventHookExecutionId"])
    logger.append_keys(deployment_id=deployment_id)
    config: Config | None = None
    reason = ""
    try:
        config = Config.from_env()
        parsed = checks.parse_config(config.checks, source="CHECKS")
        if parsed.stabilize_seconds:
            raise ConfigurationError("CHECKS: stabilize_seconds is only for CodePipeline (a lifecycle hook cannot "
                                     "be continued); use a BeforeAllowTraffic/AfterAllowTraffic hook order instead")
        outcome = run_all(parsed, config, context)
        status = "Succeeded" if outcome.passed else "Failed"
        reason = outcome.summary if outcome.passed else outcome.failure_message
    except (ConfigurationError, ConfigError) as exc:
        logger.warning("the checks configuration is malformed", extra={"reason": str(exc)})
        metrics.add_metric(name="ConfigurationErrors", unit=MetricUnit.Count, value=1)
        status, reason = "Failed", str(exc)
    except Exception as exc:
        logger.exception("the checks failed unexpectedly")
        status, reason = "Failed", f"post_deploy_checks failed unexpectedly: {type(exc).__name__}: {exc}"
    aws.put_lifecycle_status(deployment_id, hook_id, status)  # the one place the hook is answered
    logger.info("reported the lifecycle hook status", extra={"status": status})
    if status == "Failed":
        _publish_failure(config, f"CodeDeploy deployment {deployment_id}", reason, deployment_id)
    return {"result": status, "reason": reason}


# --------------------------------------------------------------------------- running the checks


def run_all(parsed: ChecksConfig, config: Config, context: LambdaContext) -> Outcome:
    """HTTP checks (concurrently, with retries) and alarm checks; metrics; one log line per result."""
    _ensure_budget(parsed, context)
    headers = resolve_headers(parsed, config)
    results = runner.run_checks(parsed.checks, headers, attempts=parsed.attempts,
                                interval_seconds=parsed.interval_seconds, timeout_seconds=parsed.timeout_seconds,
                                budget_seconds=_checks_budget(context), sleep=SLEEP)
    alarm_results = []
    if parsed.alarms:
        try:
            states = aws.alarm_states(parsed.alarms)
        except (ClientError, BotoCoreError) as exc:
            # The HTTP results stay; the alarms fail with the reason (after the SDK's own retries).
            reason = f"could not read the alarm's state: {error_code(exc) or type(exc).__name__}"
            alarm_results = [checks.AlarmResult(name, None, False, reason) for name in parsed.alarms]
        else:
            alarm_results = [checks.evaluate_alarm(name, states.get(name)) for name in parsed.alarms]
    outcome = checks.summarize(results, alarm_results)
    for result in results:
        logger.info("check result", extra={"check": result.name, "url": result.url, "passed": result.passed,
                                           "status": result.status, "latency_ms": result.latency_ms,
                                           "attempts": result.attempts, "reason": result.reason})
    for alarm in alarm_results:
        logger.info("alarm result", extra={"alarm": alarm.name, "state": alarm.state, "passed": alarm.passed,
                                           "reason": alarm.reason})
    metrics.add_metric(name="ChecksPassed", unit=MetricUnit.Count, value=outcome.checks_passed)
    metrics.add_metric(name="ChecksFailed", unit=MetricUnit.Count, value=outcome.checks_failed)
    return outcome


def _remaining_seconds(context: LambdaContext) -> float | None:
    remaining_ms = context.get_remaining_time_in_millis() if hasattr(context, "get_remaining_time_in_millis") else 0
    return remaining_ms / 1000 if remaining_ms else None


def report_margin(remaining_seconds: float) -> float:
    """Seconds kept free to read alarms and report: REPORT_MARGIN_SECONDS, or a fifth of what is left."""
    return min(REPORT_MARGIN_SECONDS, remaining_seconds / 5)


def _checks_budget(context: LambdaContext) -> float | None:
    """Wall time the HTTP checks may take now so that the result is reported before the deadline."""
    remaining = _remaining_seconds(context)
    return None if remaining is None else max(remaining - report_margin(remaining), 0.0)


def _ensure_budget(parsed: ChecksConfig, context: LambdaContext) -> None:
    remaining = _remaining_seconds(context)
    if remaining is None:
        return
    available = remaining - report_margin(remaining)
    worst = parsed.worst_case_seconds()
    if worst > available:
        raise ConfigurationError(
            f"the checks can take up to {worst:.0f} s (attempts {parsed.attempts} x timeout_seconds "
            f"{parsed.timeout_seconds:g} + {parsed.attempts - 1} x interval_seconds {parsed.interval_seconds:g}), "
            f"more than the {max(available, 0):.0f} s the function has left; lower them or raise the "
            f"automation's timeout_seconds setting"
        )


def resolve_headers(parsed: ChecksConfig, config: Config) -> dict[str, dict[str, str]]:
    """Each check's headers with secrets read from Secrets Manager. The values are never logged."""
    resolved: dict[str, dict[str, str]] = {}
    for spec in parsed.checks:
        headers: dict[str, str] = {}
        for name, value in spec.headers.items():
            if value.secret is None:
                headers[name] = value.literal or ""
                continue
            if not _secret_allowed(value.secret, config.header_secrets):
                allowed = ", ".join(config.header_secrets) or "none"
                raise ConfigurationError(
                    f"checks ({spec.name}).headers.{name}: secret {value.secret!r} is not one of the function's "
                    f"header secrets ({allowed}); add it to the automation's header_secrets setting"
                )
            try:
                headers[name] = aws.secret_value(value.secret, value.secret_key,
                                                 max_age=config.secrets_max_age_seconds)
            except aws.SecretValueError as exc:
                raise ConfigurationError(f"checks ({spec.name}).headers.{name}: {exc}") from None
        resolved[spec.name] = headers
    return resolved


def _secret_allowed(secret: str, allowed: tuple[str, ...]) -> bool:
    if secret in allowed:
        return True
    if secret.startswith("arn:") and ":secret:" in secret:
        tail = secret.split(":secret:", 1)[1]
        return any(tail == name or (tail.startswith(name + "-") and len(tail) == len(name) + 7) for name in allowed)
    return False


# --------------------------------------------------------------------------- action report


def _publish_failure(config: Config | None, subject: str, reason: str, resource: str) -> None:
    """An action report for a failed deployment. Best effort: the job is already answered, and raising
    here would make Lambda retry and answer it twice."""
    if config is None or not config.notify_topic_arn:
        return
    report = ActionReport(
        automation=AUTOMATION,
        mode="enforce",
        title=f"Post-deployment checks failed: {subject}",
        description=reason or "(no details)",
        event_type="PostDeployChecksFailed",
        summary=f"{subject} was failed by post-deployment checks",
        severity="warning",
        next_steps=["Open the failed checks above, fix the service or the checks, then retry the stage"],
        keywords=["deployment", "health-check"],
        related_resources=[resource],
    )
    try:
        ReportPublisher(client("sns"), config.notify_topic_arn).publish(report)
    except Exception:
        logger.exception("could not publish the action report (the result was already reported)")
        metrics.add_metric(name="ReportPublishErrors", unit=MetricUnit.Count, value=1)
