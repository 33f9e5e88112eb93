"""The alerts function's AWS side on moto, as its stack deploys it: the destinations secret, the delivery
table (key ``id``, TTL on ``expiration``) and the queue of undelivered messages; the environment as the
stack sets it. Used by the handler tests and the lifetime simulation."""

from __future__ import annotations

import json
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import boto3
from moto import mock_aws

SECRET_NAME = "opsauto/alerts/destinations"
TABLE_NAME = "opsauto-alerts-deliveries"


@dataclass
class AlertsAws:
    secret_arn: str
    queue_url: str
    sqs: Any
    secrets: Any

    def put_destinations(self, value: Any) -> None:
        self.secrets.put_secret_value(
            SecretId=self.secret_arn, SecretString=value if isinstance(value, str) else json.dumps(value))

    def kept(self) -> list[dict[str, Any]]:
        """Every message kept in the undelivered queue (received and deleted, so each is read once)."""
        found: list[dict[str, Any]] = []
        while True:
            messages = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10).get("Messages", [])
            if not messages:
                return found
            for message in messages:
                found.append(json.loads(message["Body"]))
                self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])


def environment(secret_arn: str, queue_url: str, **overrides: str) -> dict[str, str]:
    """The variables the stack gives the function (settings defaults + its resources)."""
    env = {
        "DESTINATIONS_SECRET_ARN": secret_arn,
        "MIN_SEVERITY": "info",
        "MAX_LOG_LINES": "20",
        "HTTP_TIMEOUT_SECONDS": "2",
        "DELIVERY_TABLE_NAME": TABLE_NAME,
        "UNDELIVERED_QUEUE_URL": queue_url,
        "DELIVERY_ATTEMPTS": "3",
    }
    env.update(overrides)
    return env


@contextmanager
def alerts_aws(environ: MutableMapping[str, str] | Any, **overrides: str) -> Iterator[AlertsAws]:
    """Inside ``mock_aws``: create the resources, set the environment through ``environ``
    (a ``pytest.MonkeyPatch``), yield a handle."""
    with mock_aws():
        secrets = boto3.client("secretsmanager", region_name="us-east-1")
        arn = secrets.create_secret(Name=SECRET_NAME, SecretString=json.dumps({"destinations": []}))["ARN"]
        dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        dynamodb.create_table(TableName=TABLE_NAME, BillingMode="PAY_PER_REQUEST",
                              AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
                              KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}])
        dynamodb.update_time_to_live(TableName=TABLE_NAME,
                                     TimeToLiveSpecification={"Enabled": True, "AttributeName": "expiration"})
        sqs = boto3.client("sqs", region_name="us-east-1")
        queue_url = sqs.create_queue(QueueName="opsauto-alerts-undelivered")["QueueUrl"]
        for name, value in environment(arn, queue_url, **overrides).items():
            environ.setenv(name, value)
        yield AlertsAws(secret_arn=arn, queue_url=queue_url, sqs=sqs, secrets=secrets)
