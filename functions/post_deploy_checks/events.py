"""The two triggers' events, parsed into typed requests (pure).

- a CodePipeline Lambda invoke action: ``{"CodePipeline.job": {"id", "data": {"actionConfiguration":
  {"configuration": {"UserParameters"}}, "continuationToken"?, "inputArtifacts", "artifactCredentials"}}}``;
- a CodeDeploy lifecycle hook: ``{"DeploymentId", "LifecycleEventHookExecutionId"}``.

The job's ``artifactCredentials`` are kept out of ``repr`` so no log line can carry them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ArtifactCredentials:
    """The job's temporary credentials for its artifact bucket: never logged (no field in ``repr``)."""

    access_key_id: str = field(repr=False)
    secret_access_key: str = field(repr=False)
    session_token: str = field(repr=False)


@dataclass(frozen=True)
class InputArtifact:
    name: str
    bucket: str
    key: str


@dataclass(frozen=True)
class JobRequest:
    job_id: str
    user_parameters: str | None
    continuation_token: str | None
    input_artifacts: tuple[InputArtifact, ...] = ()
    credentials: ArtifactCredentials | None = field(default=None, repr=False)


@dataclass(frozen=True)
class HookRequest:
    deployment_id: str
    hook_execution_id: str


@dataclass(frozen=True)
class Ignored:
    """An event the function does not act on, and why."""

    reason: str
    keys: tuple[str, ...] = ()


def parse_event(event: Any) -> JobRequest | HookRequest | Ignored:
    if isinstance(event, Mapping) and isinstance(event.get("CodePipeline.job"), Mapping):
        return _job(event["CodePipeline.job"])
    if isinstance(event, Mapping) and "DeploymentId" in event and "LifecycleEventHookExecutionId" in event:
        return HookRequest(str(event["DeploymentId"]), str(event["LifecycleEventHookExecutionId"]))
    keys = tuple(sorted(str(key) for key in event)) if isinstance(event, Mapping) else ()
    return Ignored("unrecognised event", keys)


def _job(job: Mapping[str, Any]) -> JobRequest | Ignored:
    job_id = job.get("id")
    if not isinstance(job_id, str) or not job_id:
        return Ignored("job id missing")
    data = _mapping(job.get("data"))
    configuration = _mapping(_mapping(data.get("actionConfiguration")).get("configuration"))
    user_parameters = configuration.get("UserParameters")
    token = data.get("continuationToken")
    return JobRequest(
        job_id=job_id,
        user_parameters=user_parameters if isinstance(user_parameters, str) else None,
        continuation_token=token if isinstance(token, str) and token else None,
        input_artifacts=tuple(_artifacts(data.get("inputArtifacts"))),
        credentials=_credentials(_mapping(data.get("artifactCredentials"))),
    )


def _artifacts(raw: Any) -> list[InputArtifact]:
    found = []
    for item in raw if isinstance(raw, list) else []:
        location = _mapping(_mapping(_mapping(item).get("location")).get("s3Location"))
        bucket, key = location.get("bucketName"), location.get("objectKey")
        if isinstance(bucket, str) and isinstance(key, str):
            found.append(InputArtifact(str(_mapping(item).get("name") or ""), bucket, key))
    return found


def _credentials(raw: Mapping[str, Any]) -> ArtifactCredentials | None:
    values = [raw.get(name) for name in ("accessKeyId", "secretAccessKey", "sessionToken")]
    if not all(isinstance(value, str) and value for value in values):
        return None
    return ArtifactCredentials(*(str(value) for value in values))


def invoked_qualifier(invoked_function_arn: str) -> str | None:
    """The alias (or version) the function was invoked through: ``arn:...:function:<name>:<qualifier>``."""
    parts = invoked_function_arn.split(":")
    return parts[7] if len(parts) == 8 and parts[5] == "function" and parts[7] else None


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}
