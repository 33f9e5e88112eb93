"""Orchestration: a job or a hook -> the checks' decisions -> the adapter's calls -> exactly one answer.

Every path that has a job (or hook) to answer reports exactly once, in one place: malformed parameters,
a bad environment and unexpected errors become failures rather than a pipeline left waiting for its
timeout. Only the answer itself may raise (throttled after the SDK's retries): Lambda's async retry then
runs the job again, and no answer was recorded by CodePipeline or CodeDeploy in between.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import datetime
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import BotoCoreError, ClientError

from post_deploy_checks import artifact, aws, bake, http_checks, report
from post_deploy_checks.config import DEFAULT_HOOK, HOOK_NAMES, Config
from post_deploy_checks.evaluate import AlarmResult, Outcome, evaluate_alarm, summarize
from post_deploy_checks.events import HookRequest, Ignored, JobRequest, invoked_qualifier
from post_deploy_checks.report import JobResult
from post_deploy_checks.spec import MAX_FAILURE_MESSAGE, MAX_SUMMARY, ChecksConfig, ConfigurationError, parse_config
from shared.config import ConfigError
from shared.errors import error_code, is_transient
from shared.observability import MetricUnit, logger, metrics
from shared.text import truncate
from shared.timeutil import utcnow

# Seconds kept free after the checks (at most a fifth of the remaining time), to read alarms and report the
# result before the function times out.
REPORT_MARGIN_SECONDS = 10
# The wait between attempts; tests replace it to stay fast.
SLEEP: Callable[[float], Awaitable[None]] = asyncio.sleep


def ignore(request: Ignored) -> dict[str, Any]:
    logger.warning("ignored an event that is neither a CodePipeline job nor a CodeDeploy lifecycle hook",
                   extra={"reason": request.reason, "event_keys": list(request.keys)})
    metrics.add_metric(name="UnrecognisedEvents", unit=MetricUnit.Count, value=1)
    return {"result": "ignored", "reason": request.reason}


# --------------------------------------------------------------------------- CodePipeline


def handle_job(job: JobRequest, config: Config | ConfigError, context: LambdaContext) -> dict[str, Any]:
    logger.append_keys(job_id=job.job_id)
    result = decide_job(job, config, context, utcnow())
    request_id = getattr(context, "aws_request_id", None)
    if result.kind == "failure":
        aws.put_job_failure(job.job_id, result.failure_type, result.message, request_id)
    else:
        aws.put_job_success(job.job_id, continuation_token=result.continuation_token, summary=result.summary,
                            external_execution_id=request_id, output_variables=result.output_variables)
    logger.info("reported the job result", extra={"result": result.kind, "failure_type": result.failure_type})
    if result.kind == "failure" and isinstance(config, Config):
        _publish_failure(config, f"CodePipeline job {job.job_id}", result.message, job.job_id)
    return result.as_dict()


def decide_job(job: JobRequest, config: Config | ConfigError, context: LambdaContext, now: datetime) -> JobResult:
    """The one answer for ``job``: continue (stabilizing or baking), success or failure; never raises."""
    try:
        if isinstance(config, ConfigError):
            raise config
        return _job_step(job, config, context, now)
    except ConfigurationError as exc:
        _configuration_error("the checks configuration is malformed", exc)
        return JobResult("failure", failure_type="ConfigurationError", message=str(exc))
    except ConfigError as exc:
        _configuration_error("the function's environment is malformed", exc)
        return JobResult("failure", failure_type="ConfigurationError", message=f"function environment: {exc}")
    except Exception as exc:
        logger.exception("the checks failed unexpectedly")
        return JobResult("failure", failure_type="JobFailed", message=_unexpected(exc))


def _job_step(job: JobRequest, config: Config, context: LambdaContext, now: datetime) -> JobResult:
    parsed = job_checks(job)
    if job.continuation_token:
        step = bake.resume(now, bake.read_token(job.continuation_token, _key(config), job.job_id, now))
    else:
        step = bake.start(now, parsed, job.job_id)
    if isinstance(step, bake.Wait):
        return _continue(step, config, "waiting: CodePipeline will invoke again")
    outcome = run_all(parsed, config, context)
    during = bake.baked_for(now, step.state, parsed)
    if not outcome.passed:
        result = report.job_result(outcome)
        return replace(result, message=truncate(f"{during}: {result.message}", MAX_FAILURE_MESSAGE)) if during \
            else result
    following = bake.after_pass(now, parsed, job.job_id, step.state)
    if following is not None:
        return _continue(following, config, "checks passed; baking: CodePipeline will invoke again")
    result = report.job_result(outcome)
    if parsed.bake_seconds:
        summary = f"baked {parsed.bake_seconds} s clean ({step.state.passes + 1 if step.state else 1} check runs); "
        result = replace(result, summary=truncate(summary + result.summary, MAX_SUMMARY))
    return result


def job_checks(job: JobRequest) -> ChecksConfig:
    """The job's checks: its UserParameters, or the checks file they name in the input artifact."""
    reference = artifact.checks_file_reference(job.user_parameters)
    if reference is None:
        return parse_config(job.user_parameters, source="UserParameters")
    return parse_config(_read_checks_file(job, reference), source=f"checks_file {reference.path}")


def _read_checks_file(job: JobRequest, reference: artifact.ChecksFile) -> str:
    where = f"checks_file {reference.path}"
    names = [item.name for item in job.input_artifacts]
    source = next((item for item in job.input_artifacts if reference.artifact in (None, item.name)), None)
    if source is None:
        wanted = f" named {reference.artifact}" if reference.artifact else ""
        raise ConfigurationError(f"{where}: the action has no input artifact{wanted} (inputs: "
                                 f"{', '.join(names) or 'none'})")
    if job.credentials is None:
        raise ConfigurationError(f"{where}: the job carries no artifactCredentials to read {source.name}")
    try:
        archive = aws.download_artifact(source.bucket, source.key, job.credentials, artifact.MAX_ARTIFACT_BYTES)
    except ValueError as exc:
        raise ConfigurationError(f"{where}: {exc}") from None
    except ClientError as exc:
        if is_transient(exc):
            raise
        raise ConfigurationError(f"{where}: the input artifact {source.name} could not be read "
                                 f"({error_code(exc) or 'error'})") from None
    return artifact.read_checks_file(archive, reference, source.name)


def _continue(step: bake.Wait, config: Config, message: str) -> JobResult:
    logger.info(message, extra={"phase": step.state.phase, "next_at": step.state.next_at.isoformat(),
                                "passes": step.state.passes})
    return JobResult("continue", summary=step.summary(), continuation_token=bake.make_token(step.state, _key(config)))


def _key(config: Config) -> bytes:
    return aws.token_key(config.token_key_secret)


# --------------------------------------------------------------------------- CodeDeploy


def handle_hook(hook: HookRequest, config: Config | ConfigError, context: LambdaContext) -> dict[str, Any]:
    """Answer one lifecycle hook. Which hook it is comes from the alias CodeDeploy invoked (the stack makes one
    alias per hook name, for the AppSpec's ``Hooks``); through any other qualifier the ``default`` checks run."""
    qualifier = invoked_qualifier(str(getattr(context, "invoked_function_arn", "") or ""))
    hook_name = qualifier if qualifier in HOOK_NAMES else None
    logger.append_keys(deployment_id=hook.deployment_id, hook=hook_name or DEFAULT_HOOK)
    status, reason = decide_hook(config, context, hook_name)
    aws.put_lifecycle_status(hook.deployment_id, hook.hook_execution_id, status)  # the one place it is answered
    logger.info("reported the lifecycle hook status", extra={"status": status})
    if status == "Failed" and isinstance(config, Config):
        _publish_failure(config, f"CodeDeploy deployment {hook.deployment_id}", reason, hook.deployment_id)
    return {"result": status, "reason": reason}


def decide_hook(config: Config | ConfigError, context: LambdaContext,
                hook_name: str | None = None) -> tuple[str, str]:
    """``Succeeded`` or ``Failed`` and why; never raises."""
    try:
        if isinstance(config, ConfigError):
            raise config
        if config.hook_checks is None:
            raise ConfigurationError("CHECKS is empty: the function has no checks for CodeDeploy lifecycle hooks; "
                                     "set the automation's checks setting")
        checks = config.hook_checks.for_hook(hook_name)
        if checks is None:
            raise ConfigurationError(f"CHECKS has no checks for the {hook_name or 'unnamed'} hook and no default "
                                     f"(it has {', '.join(config.hook_checks.by_hook)})")
        outcome = run_all(checks, config, context)
        prefix = f"{hook_name}: " if hook_name else ""
        if outcome.passed:
            return "Succeeded", prefix + outcome.summary
        return "Failed", prefix + outcome.failure_message
    except (ConfigurationError, ConfigError) as exc:
        _configuration_error("the checks configuration is malformed", exc)
        return "Failed", str(exc)
    except Exception as exc:
        logger.exception("the checks failed unexpectedly")
        return "Failed", _unexpected(exc)


# --------------------------------------------------------------------------- running the checks


def run_all(parsed: ChecksConfig, config: Config, context: LambdaContext) -> Outcome:
    """HTTP checks (concurrently, with retries) and alarm checks; metrics; one log line per result."""
    ensure_budget(parsed, context)
    headers = resolve_headers(parsed, config)
    results = http_checks.run_checks(parsed.checks, headers, attempts=parsed.attempts,
                                     interval_seconds=parsed.interval_seconds,
                                     timeout_seconds=parsed.timeout_seconds, budget_seconds=checks_budget(context),
                                     sleep=SLEEP)
    alarm_results = read_alarms(parsed.alarms)
    outcome = summarize(results, alarm_results)
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


def read_alarms(names: tuple[str, ...]) -> list[AlarmResult]:
    """Each alarm's verdict; when CloudWatch cannot be read, each fails with the reason (results kept)."""
    if not names:
        return []
    try:
        states = aws.alarm_states(names)
    except (ClientError, BotoCoreError) as exc:
        reason = f"could not read the alarm's state: {error_code(exc) or type(exc).__name__}"
        return [AlarmResult(name, None, False, reason) for name in names]
    return [evaluate_alarm(name, states.get(name)) for name in names]


def remaining_seconds(context: LambdaContext) -> float | None:
    remaining_ms = context.get_remaining_time_in_millis() if hasattr(context, "get_remaining_time_in_millis") else 0
    return remaining_ms / 1000 if remaining_ms else None


def report_margin(remaining: float) -> float:
    """Seconds kept free to read alarms and report: REPORT_MARGIN_SECONDS, or a fifth of what is left."""
    return min(REPORT_MARGIN_SECONDS, remaining / 5)


def checks_budget(context: LambdaContext) -> float | None:
    """Wall time the HTTP checks may take now so that the result is reported before the deadline."""
    remaining = remaining_seconds(context)
    return None if remaining is None else max(remaining - report_margin(remaining), 0.0)


def ensure_budget(parsed: ChecksConfig, context: LambdaContext) -> None:
    """ConfigurationError when the checks' worst case cannot finish before the invocation's deadline."""
    remaining = remaining_seconds(context)
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
            if not secret_allowed(value.secret, config.header_secrets):
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


def secret_allowed(secret: str, allowed: tuple[str, ...]) -> bool:
    """``secret`` (a name, or an ARN with Secrets Manager's 6-character suffix) is one of ``allowed``."""
    if secret in allowed:
        return True
    if secret.startswith("arn:") and ":secret:" in secret:
        tail = secret.split(":secret:", 1)[1]
        return any(tail == name or (tail.startswith(name + "-") and len(tail) == len(name) + 7) for name in allowed)
    return False


# --------------------------------------------------------------------------- failures


def _configuration_error(message: str, exc: Exception) -> None:
    logger.warning(message, extra={"reason": str(exc)})
    metrics.add_metric(name="ConfigurationErrors", unit=MetricUnit.Count, value=1)


def _unexpected(exc: Exception) -> str:
    return truncate(f"post_deploy_checks failed unexpectedly: {type(exc).__name__}: {exc}", MAX_FAILURE_MESSAGE)


def _publish_failure(config: Config, subject: str, reason: str, resource: str) -> None:
    """An action report for a failed deployment. Best effort: the job is already answered, and raising
    here would make Lambda retry and answer it twice."""
    if not config.notify_topic_arn:
        return
    try:
        aws.publish_report(config.notify_topic_arn, report.failure_report(subject, reason, resource))
    except Exception:
        logger.exception("could not publish the action report (the result was already reported)")
        metrics.add_metric(name="ReportPublishErrors", unit=MetricUnit.Count, value=1)
