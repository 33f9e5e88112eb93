"""The only module of this function that calls AWS: the destinations secret, the delivery table and the
queue of undelivered messages."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from aws_lambda_powertools.utilities import parameters
from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer
from botocore.exceptions import ClientError

from shared.clients import client
from shared.observability import logger
from shared.targets_aws import AccountNames

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_sqs import SQSClient

# Seconds a fetched secret value is reused by warm invocations; a changed secret is picked up after this.
SECRET_MAX_AGE_SECONDS = 300
# Delivery records outlive every retry and a replay from the failure queue (SQS keeps 14 days).
RECORD_TTL_SECONDS = 15 * 24 * 3600


def read_destinations_secret(secret_arn: str, max_age: int = SECRET_MAX_AGE_SECONDS) -> str:
    """The secret's current string value, cached for ``max_age`` seconds (Powertools parameters).

    Errors reading it (throttling, KMS, access) propagate: the invocation fails and Lambda retries,
    then the on-failure queue keeps the event.
    """
    value = parameters.get_secret(secret_arn, max_age=max_age)
    if isinstance(value, bytes):
        return value.decode()
    return str(value)


def clear_cache() -> None:
    """Forget cached secret values and account names (tests; a forced refresh)."""
    global _names
    parameters.clear_caches()  # type: ignore[no-untyped-call]
    _names = None


_names: AccountNames | None = None  # per execution environment: warm invocations reuse the names (an hour)


def account_names(from_organization: bool) -> Callable[[str], str | None]:
    """Account id -> name for messages: from Organizations (DescribeAccount, cached an hour) when the function
    works organization-wide, else none. A lookup that fails (throttling, no permission) gives no name and a
    warning: a message is never held back for a name."""
    if not from_organization:
        return lambda _account: None
    global _names
    if _names is None:
        _names = AccountNames()
    names = _names

    def name_of(account: str) -> str | None:
        try:
            return names.name(account)
        except ClientError as exc:
            logger.warning("account name lookup failed", extra={"account": account, "reason": str(exc)})
            return None

    return name_of


class DeliveryTable:
    """The DynamoDB table (key ``id``, TTL ``expiration``) of delivery records and failure counts.

    Powertools idempotency keeps one record per (alert, destination) delivered or kept; this class adds
    the count of failed invocations per (alert, destination), so the last one keeps instead of raising.
    """

    def __init__(self, table_name: str) -> None:
        self.table_name = table_name
        self._client = cast("DynamoDBClient", client("dynamodb"))
        self.persistence = DynamoDBPersistenceLayer(table_name=table_name, boto3_client=self._client)

    def count_failure(self, key: str) -> int:
        """Add one to the failures of ``key``; the new count."""
        response = self._client.update_item(
            TableName=self.table_name,
            Key={"id": {"S": f"failures#{key}"}},
            UpdateExpression="ADD failures :one SET expiration = :expiration",
            ExpressionAttributeValues={":one": {"N": "1"},
                                       ":expiration": {"N": str(int(time.time()) + RECORD_TTL_SECONDS)}},
            ReturnValues="UPDATED_NEW",
        )
        return int(response["Attributes"]["failures"]["N"])  # type: ignore[index]


    def get_thread(self, key: str) -> dict[str, str] | None:
        """The Slack message that started the thread ``key`` (channel, ts, blocks), or None."""
        item = self._client.get_item(TableName=self.table_name, Key={"id": {"S": f"thread#{key}"}},
                                     ConsistentRead=True).get("Item")
        if not item:
            return None
        return {name: str(value.get("S", "")) for name, value in item.items() if name in ("channel", "ts", "blocks")}

    def put_thread(self, key: str, channel: str, ts: str, blocks: str) -> None:
        self._client.put_item(TableName=self.table_name, Item={
            "id": {"S": f"thread#{key}"}, "channel": {"S": channel}, "ts": {"S": ts}, "blocks": {"S": blocks},
            "expiration": {"N": str(int(time.time()) + RECORD_TTL_SECONDS)}})


class UndeliveredQueue:
    """The SQS queue that keeps what a destination could not take (depth alarmed to the ops topic)."""

    def __init__(self, queue_url: str) -> None:
        self.queue_url = queue_url
        self._client = cast("SQSClient", client("sqs"))

    def keep(self, body: dict[str, Any]) -> None:
        self._client.send_message(QueueUrl=self.queue_url, MessageBody=json.dumps(body, default=str))
