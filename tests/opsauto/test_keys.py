"""``opsauto keys status`` against moto: managed users' rotation state and the account's old keys."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from opsauto import keys
from opsauto.cli import main

REGION = "us-east-1"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    context = {"project": {}, "automations": {"key_rotation": {"managed_users": [
        {"user_name": "ci-deployer"}, {"user_name": "gone", "secret_name": "elsewhere/gone"}]}}}
    (tmp_path / "cdk.json").write_text(json.dumps({"app": "true", "context": context}))
    return tmp_path


@mock_aws
def test_keys_status_reads_secrets_and_keys_and_lists_old_ones(project: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    iam = boto3.client("iam", region_name=REGION)
    sm = boto3.client("secretsmanager", region_name=REGION)
    iam.create_user(UserName="ci-deployer")
    key = iam.create_access_key(UserName="ci-deployer")["AccessKey"]
    iam.create_user(UserName="someone")
    iam.create_access_key(UserName="someone")
    sm.create_secret(Name="opsauto/key-rotation/ci-deployer", SecretString=json.dumps(
        {"UserName": "ci-deployer", "AccessKeyId": key["AccessKeyId"], "SecretAccessKey": key["SecretAccessKey"]}))

    data = keys.status(boto3.Session(region_name=REGION), project, now=datetime.now(UTC) + timedelta(days=100))
    deployer, gone = data["managed"]
    assert deployer["current_key"] == key["AccessKeyId"] and deployer["keys"][0]["id"] == key["AccessKeyId"]
    assert deployer["problems"] == ["rotation is off"]
    assert gone["problems"] == ["secret not found (is key_rotation deployed?)"]
    assert sorted(k["user"] for k in data["old_keys"]) == ["ci-deployer", "someone"]

    code = main(["--region", REGION, "--project-dir", str(project), "keys", "status"])
    out = capsys.readouterr().out
    assert code == 1 and "ci-deployer" in out and "rotation is off" in out
    assert key["SecretAccessKey"] not in out
    code = main(["--region", REGION, "--project-dir", str(project), "keys", "status", "--json"])
    assert json.loads(capsys.readouterr().out)["managed"][0]["user"] == "ci-deployer"
