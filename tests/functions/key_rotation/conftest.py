"""Fixtures of the key_rotation tests: moto IAM + Secrets Manager + STS + SNS, and a Secrets Manager stand-in.

moto's RotateSecret would invoke the rotation Lambda inside moto's Lambda (Docker), or, without a
Lambda, finish the rotation by itself. So ``start_rotation`` does what Secrets Manager does before it
calls createSecret: it enables rotation and stages an empty ``AWSPENDING`` version under a new token
(the same steps as moto's own RotateSecret, lines before its Lambda call). The tests then call the
handler with each step, as Secrets Manager would.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID
from moto.iam.models import AccessKeyLastUsed, iam_backends
from moto.secretsmanager.models import secretsmanager_backends

from demo.harness import OpsTopicTap

REGION = "us-east-1"


@dataclass
class Env:
    iam: Any
    sm: Any
    tap: OpsTopicTap
    topic_arn: str
    owners: OpsTopicTap  # the owner notices topic

    # -- Secrets Manager stand-in

    def managed_secret(self, user: str, name: str | None = None) -> str:
        """The secret the stack creates: ``{"UserName": user}`` only (the first rotation creates the key)."""
        value = json.dumps({"UserName": user})
        return str(self.sm.create_secret(Name=name or f"opsauto/key-rotation/{user}", SecretString=value)["ARN"])

    def start_rotation(self, secret_id: str, token: str | None = None, *, enable: bool = True) -> str:
        token = token or str(uuid.uuid4())
        secret = secretsmanager_backends[DEFAULT_ACCOUNT_ID][REGION].secrets[secret_id]
        secret.remove_version_stages_from_old_versions(["AWSPENDING"])
        secret.versions[token] = {"createdate": int(time.time()), "version_id": token, "version_stages": ["AWSPENDING"]}
        if enable:
            secret.rotation_requested = True
            secret.rotation_enabled = True
            secret.auto_rotate_after_days = 30
            secret.rotation_lambda_arn = "arn:aws:lambda:us-east-1:123456789012:function:opsauto-key-rotation"
        return token

    def secret_value(self, secret_id: str, stage: str = "AWSCURRENT") -> dict[str, Any]:
        return dict(json.loads(self.sm.get_secret_value(SecretId=secret_id, VersionStage=stage)["SecretString"]))

    def stages(self, secret_id: str) -> dict[str, list[str]]:
        versions = self.sm.describe_secret(SecretId=secret_id)["VersionIdsToStages"]
        return {k: sorted(v) for k, v in versions.items() if v}

    def secret_tags(self, secret_id: str) -> dict[str, str]:
        return {t["Key"]: t["Value"] for t in self.sm.describe_secret(SecretId=secret_id).get("Tags", [])}

    # -- IAM

    def user(self, name: str, *, keys: int = 0, tags: dict[str, str] | None = None) -> list[str]:
        self.iam.create_user(UserName=name, Tags=[{"Key": k, "Value": v} for k, v in (tags or {}).items()])
        return [self.iam.create_access_key(UserName=name)["AccessKey"]["AccessKeyId"] for _ in range(keys)]

    def keys(self, user: str) -> dict[str, str]:
        return {k["AccessKeyId"]: k["Status"] for k in self.iam.list_access_keys(UserName=user)["AccessKeyMetadata"]}

    def set_key(self, user: str, key_id: str, *, created: datetime | None = None,
                last_used: datetime | None = None, status: str | None = None) -> None:
        """Backdate a key (moto stamps CreateDate with the real clock) or set its last use."""
        for key in iam_backends[DEFAULT_ACCOUNT_ID]["aws"].users[user].access_keys:
            if key.access_key_id == key_id:
                if created is not None:
                    key.create_date = created
                if last_used is not None:
                    key.last_used = AccessKeyLastUsed(last_used, "s3", REGION)
                if status is not None:
                    key.status = status
                return
        raise KeyError(key_id)

    # -- reports

    def reports(self) -> list[dict[str, Any]]:
        return self.tap.messages()


def function_environment(**settings: Any) -> dict[str, str]:
    """What the stack sets: the settings model's environment plus MANAGED_SECRETS (no managed user).

    ``warn_days_before`` is 0 unless a test names it: the threshold tests see a key's action in the sweep that
    first finds it due; test_announcements.py tests the wait after the first announcement."""
    from stacks.settings.key_rotation import KeyRotationSettings

    settings.setdefault("warn_days_before", 0)
    return {**KeyRotationSettings(**settings).function_environment(), "MANAGED_SECRETS": "{}"}


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    with mock_aws():
        tap = OpsTopicTap(REGION)
        # The environment the stack gives the function with the default settings and no managed user.
        for name, value in function_environment().items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("NOTIFY_TOPIC_ARN", tap.topic_arn)
        owners = OpsTopicTap(REGION, name="opsauto-key-owners")
        monkeypatch.setenv("OWNER_TOPIC_ARN", owners.topic_arn)
        from key_rotation import handler

        monkeypatch.setattr(handler, "SLEEP", lambda seconds: None)
        yield Env(boto3.client("iam", region_name=REGION), boto3.client("secretsmanager", region_name=REGION),
                  tap, tap.topic_arn, owners)
