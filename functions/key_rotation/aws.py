"""The adapter: the only module of this function that calls AWS (IAM, STS, Secrets Manager)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from key_rotation.credentials import LastUse
from key_rotation.rotation import CURRENT, PENDING, AccessKey, Identity, NewKey, RotationError, SecretState
from shared.clients import client
from shared.errors import error_code
from shared.reports import ActionReport

if TYPE_CHECKING:
    from mypy_boto3_iam import IAMClient
    from mypy_boto3_iam.type_defs import UserTypeDef
    from mypy_boto3_secretsmanager import SecretsManagerClient
    from mypy_boto3_sns import SNSClient

# Answers of STS to a key that is not (yet) usable; anything else (throttling, 5xx) is raised as is.
_INVALID_KEY_CODES = {"InvalidClientTokenId", "SignatureDoesNotMatch", "AccessDenied", "UnrecognizedClientException"}


_TEST_CONFIG = Config(retries={"mode": "standard", "max_attempts": 2}, connect_timeout=5, read_timeout=10)


CREDENTIAL_REPORT_ATTEMPTS = 10
CREDENTIAL_REPORT_DELAY_SECONDS = 3.0


class CredentialReportNotReady(Exception):
    """IAM is still generating the credential report: the sweep fails and Lambda retries it."""


class Aws:
    """IAM, STS, Secrets Manager and SNS calls of the rotation steps and of the sweep.

    ``iam``: the IAM client of the account swept (organization-wide: the member role's, from
    ``shared.targets_aws.Sessions``); default the function's own. Secrets Manager and SNS (the managed secrets,
    the owner topic) are always the function's own account's.
    """

    def __init__(self, region: str | None = None, *, sleep: Callable[[float], None] = time.sleep,
                 iam: IAMClient | None = None) -> None:
        self._region = region
        self._sleep = sleep
        self._iam_client = iam

    @property
    def _sns(self) -> SNSClient:
        return cast("SNSClient", client("sns", self._region))

    @property
    def _iam(self) -> IAMClient:
        return self._iam_client or cast("IAMClient", client("iam"))

    @property
    def _sm(self) -> SecretsManagerClient:
        return cast("SecretsManagerClient", client("secretsmanager", self._region))

    # -- Secrets Manager

    def describe_secret(self, secret_id: str) -> dict[str, Any]:
        return dict(self._sm.describe_secret(SecretId=secret_id))

    def get_secret(self, secret_id: str, *, stage: str, version_id: str | None = None) -> dict[str, Any] | None:
        kwargs: dict[str, str] = {"SecretId": secret_id, "VersionStage": stage}
        if version_id:
            kwargs["VersionId"] = version_id
        try:
            response = self._sm.get_secret_value(**kwargs)
        except ClientError as exc:
            if error_code(exc) == "ResourceNotFoundException":
                return None
            raise
        text = response.get("SecretString")
        if not text:
            return {}
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            raise RotationError(f"secret {secret_id} ({stage}) is not JSON") from None
        if not isinstance(value, dict):
            raise RotationError(f"secret {secret_id} ({stage}) is not a JSON object")
        return value

    def put_pending(self, secret_id: str, token: str, value: dict[str, str]) -> None:
        self._sm.put_secret_value(
            SecretId=secret_id, ClientRequestToken=token, SecretString=json.dumps(value), VersionStages=["AWSPENDING"]
        )

    def move_current(self, secret_id: str, token: str, from_version: str | None) -> None:
        kwargs: dict[str, str] = {"SecretId": secret_id, "VersionStage": "AWSCURRENT", "MoveToVersionId": token}
        if from_version:
            kwargs["RemoveFromVersionId"] = from_version
        self._sm.update_secret_version_stage(**kwargs)

    def tag_secret(self, secret_id: str, tags: dict[str, str]) -> None:
        self._sm.tag_resource(SecretId=secret_id, Tags=[{"Key": k, "Value": v} for k, v in tags.items()])

    def secret_state(self, secret_id: str) -> SecretState:
        """The key ids in the secret's AWSCURRENT and AWSPENDING values, and its tags (``LookupError``: no secret)."""
        try:
            meta = self.describe_secret(secret_id)
        except ClientError as exc:
            if error_code(exc) == "ResourceNotFoundException":
                raise LookupError(f"managed secret {secret_id} does not exist") from None
            raise
        versions: dict[str, list[str]] = meta.get("VersionIdsToStages", {})
        pending_version = next((v for v, stages in versions.items() if PENDING in stages and CURRENT not in stages),
                               None)
        try:
            current = self.get_secret(secret_id, stage=CURRENT) or {}
            pending = self.get_secret(secret_id, stage=PENDING, version_id=pending_version) if pending_version else None
        except RotationError as exc:  # not JSON: which key is current cannot be told
            raise LookupError(str(exc)) from None
        return SecretState(
            current_key_id=str(current["AccessKeyId"]) if current.get("AccessKeyId") else None,
            pending_key_id=str(pending["AccessKeyId"]) if pending and pending.get("AccessKeyId") else None,
            tags={tag["Key"]: tag["Value"] for tag in meta.get("Tags", [])},
        )

    # -- IAM keys

    def list_keys(self, user_name: str) -> list[AccessKey]:
        keys: list[AccessKey] = []
        for page in self._iam.get_paginator("list_access_keys").paginate(UserName=user_name):
            for item in page.get("AccessKeyMetadata", []):
                keys.append(AccessKey(item["AccessKeyId"], item["Status"], item["CreateDate"]))
        return keys

    def create_key(self, user_name: str) -> NewKey:
        key = self._iam.create_access_key(UserName=user_name)["AccessKey"]
        return NewKey(key["AccessKeyId"], key["SecretAccessKey"])

    def delete_key(self, user_name: str, key_id: str) -> None:
        self._iam.delete_access_key(UserName=user_name, AccessKeyId=key_id)

    def deactivate_key(self, user_name: str, key_id: str) -> None:
        self._iam.update_access_key(UserName=user_name, AccessKeyId=key_id, Status="Inactive")

    def last_used(self, key_id: str) -> LastUse:
        response = self._iam.get_access_key_last_used(AccessKeyId=key_id)
        used = response.get("AccessKeyLastUsed", {})
        when, service = used.get("LastUsedDate"), used.get("ServiceName")
        return LastUse(when if isinstance(when, datetime) else None,
                       service if service and service != "N/A" else None)

    def credential_report(self) -> str:
        """The account's IAM credential report (CSV): generated if needed, waited for while in progress."""
        for _ in range(CREDENTIAL_REPORT_ATTEMPTS):
            state = self._iam.generate_credential_report().get("State")
            if state == "COMPLETE":
                try:
                    return self._iam.get_credential_report()["Content"].decode("utf-8")
                except ClientError as exc:
                    if error_code(exc) not in ("ReportInProgress", "ReportNotPresent", "ReportExpired"):
                        raise
            self._sleep(CREDENTIAL_REPORT_DELAY_SECONDS)
        # Transient: Lambda retries the sweep (IAM usually finishes a report within seconds).
        raise CredentialReportNotReady(f"the IAM credential report was not ready after {CREDENTIAL_REPORT_ATTEMPTS} "
                                       "attempts")

    # -- IAM users

    def iter_users(self) -> Iterator[UserTypeDef]:
        for page in self._iam.get_paginator("list_users").paginate():
            yield from page.get("Users", [])

    def user_tags(self, user_name: str) -> dict[str, str]:
        tags: dict[str, str] = {}
        for page in self._iam.get_paginator("list_user_tags").paginate(UserName=user_name):
            for tag in page.get("Tags", []):
                tags[tag["Key"]] = tag["Value"]
        return tags

    def tag_user(self, user_name: str, tags: dict[str, str]) -> None:
        self._iam.tag_user(UserName=user_name, Tags=[{"Key": k, "Value": v} for k, v in tags.items()])

    def untag_user(self, user_name: str, keys: list[str]) -> None:
        self._iam.untag_user(UserName=user_name, TagKeys=keys)

    def group_members(self, group_name: str) -> set[str]:
        """User names in ``group_name``; empty when the group does not exist (reported by the caller)."""
        members: set[str] = set()
        try:
            for page in self._iam.get_paginator("get_group").paginate(GroupName=group_name):
                members.update(user["UserName"] for user in page.get("Users", []))
        except ClientError as exc:
            if error_code(exc) == "NoSuchEntity":
                raise LookupError(f"exempt group {group_name} does not exist") from None
            raise
        return members

    # -- owner notices (SNS)

    def email_subscribers(self, topic_arn: str) -> set[str]:
        """Email endpoints subscribed to ``topic_arn`` (confirmed or pending)."""
        found: set[str] = set()
        for page in self._sns.get_paginator("list_subscriptions_by_topic").paginate(TopicArn=topic_arn):
            found.update(s["Endpoint"].lower() for s in page.get("Subscriptions", []) if s.get("Protocol") == "email")
        return found

    def subscribe_owner(self, topic_arn: str, email: str) -> None:
        """An email subscription that receives only the notices whose ``owner`` attribute is this address."""
        self._sns.subscribe(TopicArn=topic_arn, Protocol="email", Endpoint=email,
                            Attributes={"FilterPolicy": json.dumps({"owner": [email]})})

    def publish_owner(self, topic_arn: str, owner: str, report: ActionReport) -> str:
        response = self._sns.publish(
            TopicArn=topic_arn, Subject=f"{report.automation}: {report.title}"[:99], Message=report.to_json(),
            MessageAttributes={
                "owner": {"DataType": "String", "StringValue": owner},
                "automation": {"DataType": "String", "StringValue": report.automation},
                "severity": {"DataType": "String", "StringValue": report.severity},
            },
        )
        return str(response["MessageId"])

    # -- STS with the key under test

    def caller_identity(self, key_id: str, secret_access_key: str) -> Identity:
        """GetCallerIdentity signed with the given key: a separate client, never the cached one."""
        # boto3.client (the default session: its service models are already loaded) with explicit credentials:
        # a client of its own, signed only with the key under test, never the function's role.
        sts = boto3.client(
            "sts", region_name=self._region, aws_access_key_id=key_id, aws_secret_access_key=secret_access_key,
            aws_session_token=None, config=_TEST_CONFIG,
        )
        try:
            response = sts.get_caller_identity()
        except ClientError as exc:
            if error_code(exc) in _INVALID_KEY_CODES:
                raise RotationError(f"STS refused key {key_id}: {error_code(exc)}") from None
            raise
        return Identity(str(response["Arn"]), str(response["Account"]))
