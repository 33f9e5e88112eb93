"""alerts: an alarm, a burst of log errors and an EC2 state change, delivered to Slack and Teams.

The destinations secret is filled with two webhooks on the harness's local HTTPS receiver (a Slack and
a Teams stand-in, trusted through its CA bundle); each event is sent to the function shaped as AWS
sends it, and the scenario checks what the receiver got.
"""

from __future__ import annotations

import base64
import gzip
import json
from pathlib import Path
from typing import Any

from demo.harness import ROOT, DemoContext, DemoFailure

TITLE = "CloudWatch alarm, log error burst, EC2 state change, action report -> Slack + Teams"

EVENTS = ROOT / "tests" / "events" / "alerts"
LOG_LINES = 250


def _event(name: str) -> Any:
    return json.loads((EVENTS / f"{name}.json").read_text())


def _log_burst(region: str) -> dict[str, Any]:
    """A CloudWatch Logs subscription batch of LOG_LINES error lines (base64 of gzip, as Logs sends it)."""
    start = 1795853131000  # 2026-11-28T08:05:31Z
    payload = {
        "messageType": "DATA_MESSAGE",
        "owner": "123456789012",
        "logGroup": "/aws/lambda/orders-api",
        "logStream": "2026/11/28/[$LATEST]0f1e2d3c4b5a69788796a5b4c3d2e1f0",
        "subscriptionFilters": ["opsauto-alerts"],
        "logEvents": [
            {"id": f"{38191219840000000000 + i}", "timestamp": start + i * 40,
             "message": f"[ERROR] 2026-11-28T08:05:{31 + i // 25:02d}Z req-{i:04d} payment provider timed out"}
            for i in range(LOG_LINES)
        ],
    }
    return {"awslogs": {"data": base64.b64encode(gzip.compress(json.dumps(payload).encode())).decode()}}


def _save(out_dir: Path, name: str, body: Any) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / f"{name}.json").write_text(json.dumps(body, indent=2, ensure_ascii=False) + "\n")


def run(ctx: DemoContext) -> str:
    secrets = ctx.client("secretsmanager")
    arn = secrets.create_secret(Name="opsauto/alerts/destinations",
                                SecretString=json.dumps({"destinations": []}))["ARN"]
    secrets.put_secret_value(SecretId=arn, SecretString=json.dumps({"destinations": [
        {"type": "slack", "url": ctx.webhook.url + "/slack"},
        {"type": "teams", "url": ctx.webhook.url + "/teams", "min_severity": "warning"},
    ]}))
    ctx.say("destinations secret: Slack (all alerts) and Teams (warning and above) on the local HTTPS receiver")
    # The delivery table (one record per alert and destination, so a retry sends only what is missing)
    # and the queue that keeps what a destination could not take, as the stack creates them.
    dynamodb = ctx.client("dynamodb")
    dynamodb.create_table(TableName="opsauto-alerts-deliveries", BillingMode="PAY_PER_REQUEST",
                          AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
                          KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}])
    queue_url = ctx.client("sqs").create_queue(QueueName="opsauto-alerts-undelivered")["QueueUrl"]
    env = ctx.function_env("alerts", DESTINATIONS_SECRET_ARN=arn, DELIVERY_TABLE_NAME="opsauto-alerts-deliveries",
                           UNDELIVERED_QUEUE_URL=queue_url)

    cases = [
        ("alarm", "CloudWatch alarm via SNS", _event("sns_alarm_alarm")),
        ("log-burst", f"{LOG_LINES} error lines from a log subscription", _log_burst(ctx.region)),
        ("ec2-state", "EC2 state change via EventBridge", _event("eventbridge_ec2_state")),
    ]
    for index, (name, label, event) in enumerate(cases, start=1):
        result = ctx.invoke("alerts", event, env)
        slack = ctx.webhook.bodies("/slack")
        teams = ctx.webhook.bodies("/teams")
        if len(slack) != index or len(teams) != index:
            raise DemoFailure(f"{label}: expected {index} Slack and Teams messages so far, got {len(slack)} and "
                              f"{len(teams)} (result {result})")
        _save(ctx.out_dir, f"slack-{name}", slack[-1])
        _save(ctx.out_dir, f"teams-{name}", teams[-1])
        ctx.say(f"{label}: Slack text = {slack[-1]['text']!r}")

    burst = ctx.webhook.bodies("/slack")[1]
    if len(burst["blocks"]) > 50 or not burst["text"].startswith(f":warning: [WARNING] {LOG_LINES} matching log lines"):
        raise DemoFailure(f"the log burst was not one Slack message within limits: {burst['text']!r}")

    # An OK alarm (info) reaches Slack but not Teams, which asked for warning and above.
    ok_alarm = _event("sns_alarm_ok")
    ctx.invoke("alerts", ok_alarm, env)
    if len(ctx.webhook.bodies("/slack")) != 4 or len(ctx.webhook.bodies("/teams")) != 3:
        raise DemoFailure("the OK alarm should go to Slack only (Teams min_severity is warning)")
    ctx.say(f"OK alarm (info): Slack only, text = {ctx.webhook.bodies('/slack')[-1]['text']!r}")

    # Another automation's action report, as the ops topic delivers it.
    ctx.invoke("alerts", _event("sns_action_report"), env)
    report = ctx.webhook.bodies("/slack")[-1]
    if len(ctx.webhook.bodies("/slack")) != 5 or "Closed SSH" not in report["text"]:
        raise DemoFailure(f"the action report did not reach Slack: {report.get('text')!r}")
    _save(ctx.out_dir, "slack-action-report", report)
    ctx.say(f"action report of sg_remediation (ops topic): Slack text = {report['text']!r}")

    # Lambda retries an event (here: the same alarm again): the record says it was delivered, nothing is resent.
    again = ctx.invoke("alerts", _event("sns_alarm_alarm"), env)
    if len(ctx.webhook.bodies("/slack")) != 5 or again.get("already_delivered") != 2:
        raise DemoFailure(f"a retried alarm was sent again: {again}")
    ctx.say("the same alarm delivered again (a Lambda retry): recorded as delivered, not sent twice")
    ctx.say(f"payloads written to {ctx.out_dir}/slack-*.json and teams-*.json")
    return f"5 alerts -> 5 Slack + 4 Teams messages; {LOG_LINES} log lines became one message"
