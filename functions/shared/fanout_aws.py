"""The adapter of the fan-out: the work queue (SQS) and the run table (DynamoDB).

Run table items (partition key ``run``, sort key ``item``; every item expires after ``RETENTION_DAYS``):

- ``#run``: the run's header: automation, time, total, ``done`` and ``failed`` counters, the target keys,
  accounts left out, account names, ``dispatched`` and ``summary`` (claimed / the SNS message id);
- ``t#<account>:<region>``: one target's outcome (status, changes, detail, data);
- run ``#open:<automation>`` / item ``#open``: the set of this automation's runs not yet summarized.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from shared.errors import error_code
from shared.fanout import RunSummary, TargetOutcome, WorkItem, batches
from shared.targets import Target
from shared.timeutil import parse_time

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_sqs import SQSClient

RETENTION_DAYS = 14
HEADER = "#run"
OUTCOME_PREFIX = "t#"
SEND_ATTEMPTS = 3


class WorkQueue:
    def __init__(self, sqs: SQSClient, queue_url: str) -> None:
        self._sqs = sqs
        self._url = queue_url
        self.calls = 0

    def send(self, items: list[WorkItem]) -> int:
        """Send every item (SendMessageBatch, 10 a call); entries SQS failed on its side are sent again.

        Raises when an entry is refused as malformed (a bug) or still fails after ``SEND_ATTEMPTS``: the
        scheduled invocation is then retried and sends again (workers skip targets already recorded).
        """
        sent = 0
        for batch in batches(items):
            pending = {str(index): item.to_json() for index, item in enumerate(batch)}
            for _attempt in range(SEND_ATTEMPTS):
                self.calls += 1
                response = self._sqs.send_message_batch(
                    QueueUrl=self._url,
                    Entries=[{"Id": key, "MessageBody": body} for key, body in pending.items()],
                )
                for ok in response.get("Successful", []):
                    pending.pop(ok["Id"], None)
                    sent += 1
                refused = [f for f in response.get("Failed", []) if f.get("SenderFault")]
                if refused:
                    raise ValueError(f"SQS refused work items: {refused}")
                if not pending:
                    break
            if pending:
                raise RuntimeError(f"{len(pending)} work items could not be sent after {SEND_ATTEMPTS} attempts")
        return sent


def _s(value: str) -> dict[str, Any]:
    return {"S": value}


def _n(value: int | float) -> dict[str, Any]:
    return {"N": str(value)}


class RunTable:
    def __init__(self, dynamodb: DynamoDBClient, table_name: str) -> None:
        self._db = dynamodb
        self._table = table_name

    def _expires(self) -> dict[str, Any]:
        return _n(int(time.time()) + RETENTION_DAYS * 86400)

    def _key(self, run: str, item: str) -> dict[str, Any]:
        return {"run": _s(run), "item": _s(item)}

    # -- the run's header
    def start(self, automation: str, run: str, when: str, targets: list[Target], skipped: dict[str, str],
              names: dict[str, str]) -> bool:
        """Write the header; False when this run was started before (a retried scheduled invocation)."""
        item = {
            **self._key(run, HEADER),
            "automation": _s(automation), "time": _s(when), "total": _n(len(targets)), "done": _n(0),
            "failed": _n(0), "keys": _s(json.dumps([t.key for t in targets])), "skipped": _s(json.dumps(skipped)),
            "names": _s(json.dumps(names)), "expires": self._expires(),
        }
        try:
            self._db.put_item(TableName=self._table, Item=item, ConditionExpression="attribute_not_exists(#r)",
                              ExpressionAttributeNames={"#r": "run"})
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def header(self, run: str) -> dict[str, Any] | None:
        response = self._db.get_item(TableName=self._table, Key=self._key(run, HEADER), ConsistentRead=True)
        return response.get("Item")

    def mark_dispatched(self, run: str) -> None:
        self._db.update_item(TableName=self._table, Key=self._key(run, HEADER),
                             UpdateExpression="SET dispatched = :t", ExpressionAttributeValues={":t": {"BOOL": True}})

    # -- outcomes
    def has_outcome(self, run: str, target: Target) -> bool:
        response = self._db.get_item(TableName=self._table, Key=self._key(run, OUTCOME_PREFIX + target.key),
                                     ConsistentRead=True, ProjectionExpression="#i",
                                     ExpressionAttributeNames={"#i": "item"})
        return "Item" in response

    def record(self, run: str, outcome: TargetOutcome) -> bool:
        """The outcome and the run's counters in one transaction; False when it was recorded before."""
        item = {
            **self._key(run, OUTCOME_PREFIX + outcome.target.key),
            "status": _s(outcome.status), "changes": _n(outcome.changes), "detail": _s(outcome.detail),
            "data": _s(json.dumps(outcome.data, default=str)), "expires": self._expires(),
        }
        try:
            self._db.transact_write_items(TransactItems=[
                {"Put": {"TableName": self._table, "Item": item, "ConditionExpression": "attribute_not_exists(#i)",
                         "ExpressionAttributeNames": {"#i": "item"}}},
                {"Update": {"TableName": self._table, "Key": self._key(run, HEADER),
                            "UpdateExpression": "ADD done :one, failed :failed",
                            "ConditionExpression": "attribute_exists(#r)",
                            "ExpressionAttributeNames": {"#r": "run"},
                            "ExpressionAttributeValues": {
                                ":one": _n(1), ":failed": _n(1 if outcome.status == "failed" else 0)}}},
            ])
        except ClientError as exc:
            reasons = exc.response.get("CancellationReasons", [])  # type: ignore[typeddict-item]
            if error_code(exc) == "TransactionCanceledException" and any(
                    r.get("Code") == "ConditionalCheckFailed" for r in reasons):
                return False
            raise
        return True

    def outcomes(self, run: str) -> list[TargetOutcome]:
        found: list[TargetOutcome] = []
        paginator = self._db.get_paginator("query")
        for page in paginator.paginate(
                TableName=self._table, ConsistentRead=True,
                KeyConditionExpression="#r = :run AND begins_with(#i, :prefix)",
                ExpressionAttributeNames={"#r": "run", "#i": "item"},
                ExpressionAttributeValues={":run": _s(run), ":prefix": _s(OUTCOME_PREFIX)}):
            for item in page.get("Items", []):
                target = Target.from_key(item["item"]["S"].removeprefix(OUTCOME_PREFIX))
                found.append(TargetOutcome(
                    target, "failed" if item["status"]["S"] == "failed" else "ok", int(item["changes"]["N"]),
                    item["detail"]["S"], json.loads(item["data"]["S"])))
        return found

    # -- the summary: claimed by exactly one worker (or a later dispatch), then marked sent
    def claim_summary(self, run: str) -> bool:
        try:
            self._db.update_item(TableName=self._table, Key=self._key(run, HEADER),
                                 UpdateExpression="SET summary = :claimed",
                                 ConditionExpression="attribute_exists(#r) AND attribute_not_exists(summary)",
                                 ExpressionAttributeNames={"#r": "run"},
                                 ExpressionAttributeValues={":claimed": _s("claimed")})
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def release_summary(self, run: str) -> None:
        self._db.update_item(TableName=self._table, Key=self._key(run, HEADER), UpdateExpression="REMOVE summary")

    def summary_sent(self, run: str, message_id: str | None) -> None:
        self._db.update_item(TableName=self._table, Key=self._key(run, HEADER), UpdateExpression="SET summary = :m",
                             ExpressionAttributeValues={":m": _s(f"sent {message_id or '(not published)'}")})

    def summary(self, run: str, header: dict[str, Any]) -> RunSummary:
        return RunSummary(
            automation=header["automation"]["S"],
            run=run,
            time=parse_time(header["time"]["S"]),
            targets=[Target.from_key(key) for key in json.loads(header["keys"]["S"])],
            outcomes=self.outcomes(run),
            skipped=json.loads(header["skipped"]["S"]),
            names=json.loads(header["names"]["S"]),
        )

    # -- runs not yet summarized, per automation
    def _open_key(self, automation: str) -> dict[str, Any]:
        return self._key(f"#open:{automation}", "#open")

    def add_open(self, automation: str, run: str) -> None:
        self._db.update_item(TableName=self._table, Key=self._open_key(automation), UpdateExpression="ADD runs :r",
                             ExpressionAttributeValues={":r": {"SS": [run]}})

    def remove_open(self, automation: str, run: str) -> None:
        self._db.update_item(TableName=self._table, Key=self._open_key(automation),
                             UpdateExpression="DELETE runs :r", ExpressionAttributeValues={":r": {"SS": [run]}})

    def open_runs(self, automation: str) -> list[str]:
        response = self._db.get_item(TableName=self._table, Key=self._open_key(automation), ConsistentRead=True)
        return sorted(response.get("Item", {}).get("runs", {}).get("SS", []))

