"""Checks from a file in the pipeline's own source: a real zip in the artifact bucket (moto S3), read with the
job's artifactCredentials; good, missing, malformed and too large files; the credentials are never logged."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber
from moto import mock_aws

from post_deploy_checks import handler
from post_deploy_checks.artifact import MAX_CHECKS_FILE_BYTES
from shared.clients import client
from tests.conftest import FakeContext, load_event
from tests.functions.post_deploy_checks.conftest import Endpoints, Sleeps, token_key_secret

JOB_ID = "11111111-abcd-1111-abcd-111111abcdef"
BUCKET = "codepipeline-us-east-1-1234567890"
KEY = "my-pipeline/SourceArti/AbCdEfG"
ARTIFACT_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


@pytest.fixture(autouse=True)
def _aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name, value in {"CHECKS": "", "HEADER_SECRETS": "", "SECRETS_MAX_AGE_SECONDS": "300"}.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        monkeypatch.setenv("NOTIFY_TOPIC_ARN", boto3.client("sns", region_name="us-east-1").create_topic(
            Name="opsauto-ops")["TopicArn"])
        monkeypatch.setenv("TOKEN_KEY_SECRET_ARN", token_key_secret())
        boto3.client("s3", region_name="us-east-1").create_bucket(Bucket=BUCKET)
        yield


@pytest.fixture
def pipeline() -> Iterator[Stubber]:
    stubber = Stubber(client("codepipeline"))
    with stubber:
        yield stubber
        stubber.assert_no_pending_responses()


def upload(files: dict[str, bytes | str] | None = None, raw: bytes | None = None) -> None:
    """The source artifact as CodePipeline stores it: a zip of the repository."""
    if raw is None:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as bundle:
            bundle.writestr("README.md", "# service\n")
            for name, content in (files or {}).items():
                bundle.writestr(name, content)
        raw = buffer.getvalue()
    boto3.client("s3", region_name="us-east-1").put_object(Bucket=BUCKET, Key=KEY, Body=raw)


def job(user_parameters: dict[str, Any]) -> dict[str, Any]:
    event = load_event("post_deploy_checks/codepipeline_job.json")
    data = event["CodePipeline.job"]["data"]
    data["actionConfiguration"]["configuration"]["UserParameters"] = json.dumps(user_parameters)
    assert data["inputArtifacts"][0]["location"]["s3Location"] == {"bucketName": BUCKET, "objectKey": KEY}
    return event


def run(event: dict[str, Any]) -> dict[str, Any]:
    return handler.handler(event, FakeContext())  # type: ignore[arg-type]


def test_checks_come_from_the_file_in_the_artifact(endpoints: Endpoints, pipeline: Stubber, no_sleep: Sleeps,
                                                   json_logs: io.StringIO) -> None:
    checks = {"checks": [{"name": f"api-{index}", "url": endpoints.url(f"/healthy?n={index}"),
                          "json": {"path": "status", "equals": "ok"}} for index in range(12)],
              "attempts": 1, "timeout_seconds": 5}
    assert len(json.dumps(checks)) > 1000  # too long for UserParameters
    upload({"deploy/checks.json": json.dumps(checks)})
    pipeline.add_response("put_job_success_result", {}, {"jobId": JOB_ID, "executionDetails": ANY,
                                                         "outputVariables": {"checks_passed": "12",
                                                                             "checks_failed": "0"}})
    assert run(job({"checks_file": "deploy/checks.json"}))["result"] == "success"
    assert ARTIFACT_SECRET not in json_logs.getvalue()


@pytest.mark.parametrize(("files", "raw", "message"), [
    ({}, None, "checks_file deploy/checks.json is not in the input artifact SourceArtifact"),
    ({"deploy/checks.json": '{"checks": [ {"name": '}, None, "checks_file deploy/checks.json is not valid JSON"),
    ({"deploy/checks.json": json.dumps({"checks": [{"name": "a", "url": "ftp://x"}]})}, None,
     "checks_file deploy/checks.json: checks[0] (a).url: required, an http:// or https:// URL"),
    ({"deploy/checks.json": json.dumps({"alarms": ["a"], "padding": "x" * MAX_CHECKS_FILE_BYTES})}, None,
     f"more than the {MAX_CHECKS_FILE_BYTES} a checks file may have"),
    (None, b"this is not a zip", "the input artifact SourceArtifact is not a readable zip (BadZipFile)"),
])
def test_a_missing_or_bad_file_is_a_configuration_error(pipeline: Stubber, json_logs: io.StringIO,
                                                        files: dict[str, str] | None, raw: bytes | None,
                                                        message: str) -> None:
    upload(files, raw)
    pipeline.add_response("put_job_failure_result", {}, {"jobId": JOB_ID, "failureDetails": ANY})
    result = run(job({"checks_file": "deploy/checks.json"}))
    assert result["type"] == "ConfigurationError"
    assert message in result["message"], result["message"]
    assert ARTIFACT_SECRET not in json_logs.getvalue() and ARTIFACT_SECRET not in json.dumps(result)


def test_the_artifact_object_missing_is_a_configuration_error(pipeline: Stubber) -> None:
    pipeline.add_response("put_job_failure_result", {}, {"jobId": JOB_ID, "failureDetails": ANY})
    result = run(job({"checks_file": "deploy/checks.json"}))
    assert result["type"] == "ConfigurationError"
    assert "checks_file deploy/checks.json: the input artifact SourceArtifact could not be read" in result["message"]


@pytest.mark.parametrize(("parameters", "message"), [
    ({"checks_file": "../etc/passwd"}, "UserParameters.checks_file: must be a relative path"),
    ({"checks_file": "deploy/checks.json", "alarms": ["a"]}, "with checks_file the checks come from that file"),
    ({"checks_file": "deploy/checks.json", "artifact": "Build"},
     "the action has no input artifact named Build (inputs: SourceArtifact)"),
])
def test_bad_references_are_configuration_errors(pipeline: Stubber, parameters: dict[str, Any],
                                                 message: str) -> None:
    upload({"deploy/checks.json": json.dumps({"alarms": ["a"]})})
    pipeline.add_response("put_job_failure_result", {}, {"jobId": JOB_ID, "failureDetails": ANY})
    result = run(job(parameters))
    assert result["type"] == "ConfigurationError" and message in result["message"], result["message"]
