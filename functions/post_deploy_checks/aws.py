"""The adapter: the only module of post_deploy_checks that calls AWS."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import TYPE_CHECKING, Any, cast

import boto3
from aws_lambda_powertools.utilities.parameters import SecretsProvider

from post_deploy_checks.events import ArtifactCredentials
from shared.clients import RETRY_CONFIG, client
from shared.reports import ActionReport, ReportPublisher

if TYPE_CHECKING:
    from mypy_boto3_cloudwatch import CloudWatchClient
    from mypy_boto3_codedeploy import CodeDeployClient
    from mypy_boto3_codedeploy.literals import LifecycleEventStatusType
    from mypy_boto3_codepipeline import CodePipelineClient
    from mypy_boto3_codepipeline.type_defs import ExecutionDetailsTypeDef, FailureDetailsTypeDef
    from mypy_boto3_secretsmanager import SecretsManagerClient

DESCRIBE_ALARMS_MAX_NAMES = 100


class SecretValueError(ValueError):
    """A secret named by a header cannot be used (not a string, or the JSON key is missing)."""


def _codepipeline() -> CodePipelineClient:
    return cast("CodePipelineClient", client("codepipeline"))


def _codedeploy() -> CodeDeployClient:
    return cast("CodeDeployClient", client("codedeploy"))


def _cloudwatch() -> CloudWatchClient:
    return cast("CloudWatchClient", client("cloudwatch"))


def _secretsmanager() -> SecretsManagerClient:
    return cast("SecretsManagerClient", client("secretsmanager"))


def put_job_success(
    job_id: str,
    *,
    continuation_token: str | None = None,
    summary: str | None = None,
    external_execution_id: str | None = None,
    output_variables: Mapping[str, str] | None = None,
) -> None:
    """PutJobSuccessResult. With a continuation token CodePipeline invokes the function again (no variables)."""
    details: ExecutionDetailsTypeDef = {}
    if summary:
        details["summary"] = summary
    if external_execution_id:
        details["externalExecutionId"] = external_execution_id
    params: dict[str, Any] = {"jobId": job_id}
    if continuation_token:
        params["continuationToken"] = continuation_token
    if details:
        params["executionDetails"] = details
    if output_variables and not continuation_token:
        params["outputVariables"] = dict(output_variables)
    _codepipeline().put_job_success_result(**params)


def put_job_failure(job_id: str, failure_type: str, message: str, external_execution_id: str | None = None) -> None:
    details = cast("FailureDetailsTypeDef", {"type": failure_type, "message": message})
    if external_execution_id:
        details["externalExecutionId"] = external_execution_id
    _codepipeline().put_job_failure_result(jobId=job_id, failureDetails=details)


def put_lifecycle_status(deployment_id: str, hook_execution_id: str, status: str) -> None:
    _codedeploy().put_lifecycle_event_hook_execution_status(
        deploymentId=deployment_id, lifecycleEventHookExecutionId=hook_execution_id,
        status=cast("LifecycleEventStatusType", status),
    )


def alarm_states(names: Iterable[str]) -> dict[str, str]:
    """State (OK / ALARM / INSUFFICIENT_DATA) of each named alarm that exists, metric and composite alike."""
    wanted = list(dict.fromkeys(names))
    states: dict[str, str] = {}
    paginator = _cloudwatch().get_paginator("describe_alarms")
    for start in range(0, len(wanted), DESCRIBE_ALARMS_MAX_NAMES):
        chunk = wanted[start : start + DESCRIBE_ALARMS_MAX_NAMES]
        for page in paginator.paginate(AlarmNames=chunk, AlarmTypes=["MetricAlarm", "CompositeAlarm"]):
            for metric_alarm in page.get("MetricAlarms", []):
                states[metric_alarm["AlarmName"]] = metric_alarm["StateValue"]
            for composite in page.get("CompositeAlarms", []):
                states[composite["AlarmName"]] = composite["StateValue"]
    return states


@lru_cache(maxsize=8)
def _secrets(secrets_client: Any) -> SecretsProvider:
    # One provider per cached boto3 client: Powertools caches each value for ``max_age`` seconds.
    return SecretsProvider(boto3_client=secrets_client)


def secret_value(name: str, key: str | None = None, *, max_age: int = 300) -> str:
    """A secret's string value (or one key of its JSON value), cached for ``max_age`` seconds. Never logged."""
    value = _secrets(_secretsmanager()).get(name, max_age=max_age)
    if isinstance(value, bytes):
        raise SecretValueError(f"secret {name!r} is binary; a header needs a string secret")
    text = str(value)
    if key is None:
        return text
    try:
        document = json.loads(text)
    except ValueError:
        raise SecretValueError(f"secret {name!r} is not JSON, so it has no key {key!r}") from None
    if not isinstance(document, dict) or not isinstance(document.get(key), str):
        raise SecretValueError(f"secret {name!r} has no string key {key!r}")
    return str(document[key])


def token_key(secret_arn: str) -> bytes:
    """The HMAC key of continuation tokens (the stack's generated secret), cached for an hour. Never logged."""
    value = _secrets(_secretsmanager()).get(secret_arn, max_age=3600)
    key = value if isinstance(value, bytes) else str(value).encode()
    if len(key) < 32:
        raise SecretValueError("the continuation token key is shorter than 32 bytes")
    return key


def download_artifact(bucket: str, key: str, credentials: ArtifactCredentials, max_bytes: int) -> bytes:
    """The input artifact's bytes, read with the job's own artifact credentials (a client of its own, never
    cached or logged); ValueError when it is larger than ``max_bytes``."""
    s3 = boto3.client(
        "s3", aws_access_key_id=credentials.access_key_id, aws_secret_access_key=credentials.secret_access_key,
        aws_session_token=credentials.session_token, config=RETRY_CONFIG)
    size = s3.head_object(Bucket=bucket, Key=key)["ContentLength"]
    if size > max_bytes:
        raise ValueError(f"the input artifact is {size} bytes, more than the {max_bytes} read to find a checks file")
    return s3.get_object(Bucket=bucket, Key=key)["Body"].read(max_bytes + 1)


def publish_report(topic_arn: str, report: ActionReport) -> str:
    """Publish an action report to the ops topic; the message id."""
    return str(ReportPublisher(client("sns"), topic_arn).publish(report))
