"""The operator command end to end against moto: stacks deployed from the synthesized templates."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from opsauto.cli import main
from opsauto.records import mask, mask_url
from tests.conftest import load_event
from tests.lifetime.kit import failure_record
from tests.opsauto.conftest import REGION, Account, minutes_ago, put_activity

PDC = "opsauto-post-deploy-checks"
IMAGES = "opsauto-image-resize"


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["--region", REGION, *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def keep_failure(account: Account, stack: str, event: Any, error: Exception, function: str | None = None) -> None:
    """Put a record into the function's failure queue, exactly as Lambda's on-failure destination does."""
    dep = account[stack]
    name = function or dep.function("")
    record = failure_record(event, error, name, 3)
    record["requestContext"]["functionArn"] = f"{dep.arns[_logical(dep, name)]}:$LATEST"
    boto3.client("sqs", region_name=REGION).send_message(QueueUrl=dep.queue("FailureQueue"),
                                                         MessageBody=json.dumps(record))


def _logical(dep: Any, physical: str) -> str:
    return next(logical for logical, p in dep.physical.items() if p == physical)


def visible(queue_url: str) -> int:
    attrs = boto3.client("sqs", region_name=REGION).get_queue_attributes(
        QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])
    return int(attrs["Attributes"]["ApproximateNumberOfMessages"]) + int(
        attrs["Attributes"]["ApproximateNumberOfMessagesNotVisible"])


def test_status_healthy_lists_every_automation_and_exits_0(
        account: Account, capsys: pytest.CaptureFixture[str]) -> None:
    fn = account[PDC].function("")
    last = minutes_ago(10)  # once: a minute may turn while the test runs
    put_activity(fn, minutes_ago(30), invocations=1)
    put_activity(fn, last, invocations=1, errors=0)
    code, out, _ = run(capsys, "status")
    assert code == 0
    assert "post_deploy_checks" in out and "not deployed" in out  # sg_remediation & co are not deployed here
    row = next(line for line in out.splitlines() if line.startswith("post_deploy_checks"))
    assert "CREATE_COMPLETE" in row and " ok" in row
    code, out, _ = run(capsys, "status", "--json")
    data = json.loads(out)
    pdc = next(r for r in data["automations"] if r["automation"] == "post_deploy_checks")
    assert pdc["invocations_24h"] == 2 and pdc["errors_24h"] == 0 and pdc["last_result"] == "ok"
    assert pdc["last_invocation"] == last.strftime("%Y-%m-%dT%H:%M:%SZ")
    alerts = next(r for r in data["automations"] if r["automation"] == "alerts")
    assert alerts["deployed"] is False and alerts["stack_status"] is None
    [url] = pdc["dashboards"]
    assert url.startswith(f"https://{REGION}.console.aws.amazon.com/cloudwatch/home?region={REGION}#dashboards/")
    assert "dashboards:" in run(capsys, "status")[1]


def test_status_exits_1_on_kept_events_and_firing_alarms(account: Account, capsys: pytest.CaptureFixture[str]) -> None:
    keep_failure(account, PDC, load_event("post_deploy_checks/codedeploy_hook.json"), RuntimeError("boom"))
    dep = account[IMAGES]
    alarm = next(name for logical, name in dep.alarms.items() if "Errors" in logical)
    boto3.client("cloudwatch", region_name=REGION).set_alarm_state(AlarmName=alarm, StateValue="ALARM",
                                                                   StateReason="Threshold Crossed: 1 datapoint")
    put_activity(dep.function(""), minutes_ago(3), invocations=1, errors=1)
    code, out, _ = run(capsys, "status", "--json")
    data = json.loads(out)
    assert code == 1
    assert sorted(data["unhealthy"]) == ["image_resize", "post_deploy_checks"]
    pdc = next(r for r in data["automations"] if r["automation"] == "post_deploy_checks")
    assert pdc["kept"] == 1 and pdc["kept_queues"][0]["kind"] == "failure"
    images = next(r for r in data["automations"] if r["automation"] == "image_resize")
    assert images["alarms_firing"] == [alarm] and images["last_result"] == "error"
    code, out, _ = run(capsys, "status")
    assert code == 1 and "attention: image_resize, post_deploy_checks" in out


def test_kept_lists_records_with_credentials_masked(account: Account, capsys: pytest.CaptureFixture[str]) -> None:
    job = load_event("post_deploy_checks/codepipeline_job.json")
    keep_failure(account, PDC, job, TimeoutError("Task timed out after 60.00 seconds"))
    code, out, _ = run(capsys, "kept", "post_deploy_checks", "--json")
    assert code == 0
    [item] = json.loads(out)
    assert item["kind"] == "failure" and item["event"] == "codepipeline-job"
    assert item["fields"]["jobId"] == job["CodePipeline.job"]["id"]
    assert item["reason"].startswith("RetriesExhausted: TimeoutError: Task timed out")
    assert item["attempts"] == 3
    assert "wJalrXUtnFEMI" not in out and "SESSIONTOKEN" not in out and "AKIA" not in out
    code, out, _ = run(capsys, "kept", "post_deploy_checks")
    assert "1 kept" in out and "codepipeline-job" in out and "AKIA" not in out
    # listing does not consume: the record is still there, visible again
    assert visible(account[PDC].queue("FailureQueue")) == 1


def test_replay_dry_run_sends_nothing_and_keeps_everything(
        account: Account, capsys: pytest.CaptureFixture[str]) -> None:
    keep_failure(account, PDC, load_event("post_deploy_checks/codedeploy_hook.json"), RuntimeError("boom"))
    code, out, _ = run(capsys, "replay", "post_deploy_checks", "--dry-run")
    assert code == 0 and "would replay" in out and "dry run" in out
    assert visible(account[PDC].queue("FailureQueue")) == 1


def test_replay_invokes_the_function_and_deletes_only_accepted_records(
        account: Account, capsys: pytest.CaptureFixture[str]) -> None:
    dep = account[PDC]
    keep_failure(account, PDC, load_event("post_deploy_checks/codedeploy_hook.json"), RuntimeError("boom"))
    # a record that names a function outside this stack is never invoked
    foreign = failure_record({"DeploymentId": "d-1", "LifecycleEventHookExecutionId": "x"}, RuntimeError("x"), "f", 3)
    foreign["requestContext"]["functionArn"] = "arn:aws:lambda:us-east-1:123456789012:function:someone-else:$LATEST"
    boto3.client("sqs", region_name=REGION).send_message(QueueUrl=dep.queue("FailureQueue"),
                                                         MessageBody=json.dumps(foreign))
    code, out, _ = run(capsys, "replay", "post_deploy_checks", "--json")
    results = {r["outcome"]: r for r in json.loads(out)}
    assert code == 1  # one record refused
    assert set(results) == {"replayed", "refused"}
    assert "someone-else" in results["refused"]["detail"]
    assert visible(dep.queue("FailureQueue")) == 1  # only the refused one is left


def test_replay_sends_dead_letters_back_to_their_source_queue(
        account: Account, capsys: pytest.CaptureFixture[str]) -> None:
    dep = account[IMAGES]
    sqs = boto3.client("sqs", region_name=REGION)
    queues = [url for url in dep.physical.values() if url.startswith("https://")]
    policies = {url: sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["RedrivePolicy"]).get("Attributes", {})
                for url in queues}
    source = next(url for url, attrs in policies.items() if "RedrivePolicy" in attrs)
    target = json.loads(policies[source]["RedrivePolicy"])["deadLetterTargetArn"]
    dlq = next(url for url in queues if url.endswith("/" + target.rsplit(":", 1)[-1]))
    body = json.dumps(load_event("image_resize/s3_object_created_put.json"))
    sqs.send_message(QueueUrl=dlq, MessageBody=body)
    code, out, _ = run(capsys, "kept", "image_resize", "--json")
    [item] = json.loads(out)
    assert item["kind"] == "dead-letter" and item["event"] == "s3"
    code, out, _ = run(capsys, "replay", "image_resize")
    assert code == 0 and "replayed" in out
    assert visible(dlq) == 0
    [moved] = sqs.receive_message(QueueUrl=source)["Messages"]
    assert moved["Body"] == body


def test_unknown_automation_missing_stack_and_missing_credentials_are_one_line_errors(
        account: Account, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    code, _, err = run(capsys, "kept", "coffee_maker")
    assert code == 2 and err.startswith("opsauto: error: unknown automation 'coffee_maker'")
    code, _, err = run(capsys, "kept", "alerts")
    assert code == 2 and "stack opsauto-alerts is not deployed" in err
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    code, _, err = run(capsys, "status")
    assert code == 2 and "no AWS credentials found" in err and "Traceback" not in err


def test_masking() -> None:
    assert mask_url("https://hooks.slack.com/services/T000/B000/XXXX") == "https://hooks.slack.com/services/***"
    assert mask_url("https://user:pw@example.com/health?token=abc") == "https://example.com/health/***"
    masked = mask({"url": "see https://x.webhook.office.com/webhookb2/abc/IncomingWebhook/def", "password": "p",
                   "nested": [{"apiKey": "k", "name": "ok"}]})
    assert masked == {"url": "see https://x.webhook.office.com/webhookb2/***", "password": "***",
                      "nested": [{"apiKey": "***", "name": "ok"}]}


def test_an_event_eventbridge_could_not_deliver_is_replayed_to_the_queue_s_function(
        account: Account, capsys: pytest.CaptureFixture[str]) -> None:
    dep = account[PDC]
    sqs = boto3.client("sqs", region_name=REGION)
    event = load_event("post_deploy_checks/codedeploy_hook.json")
    sqs.send_message(QueueUrl=dep.queue("FailureQueue"), MessageBody=json.dumps(event), MessageAttributes={
        "ERROR_CODE": {"DataType": "String", "StringValue": "AWS.Scheduler.InternalServerError"},
        "ERROR_MESSAGE": {"DataType": "String", "StringValue": "Unexpected error occurred"},
        "RETRY_ATTEMPTS": {"DataType": "Number", "StringValue": "185"}})
    code, out, _ = run(capsys, "kept", "post_deploy_checks", "--json")
    [item] = json.loads(out)
    assert item["kind"] == "undelivered" and item["event"] == "codedeploy-hook" and item["attempts"] == 185
    assert item["reason"] == "not delivered: AWS.Scheduler.InternalServerError: Unexpected error occurred"
    code, out, _ = run(capsys, "replay", "post_deploy_checks", "--json")
    [result] = json.loads(out)
    assert code == 0 and result["outcome"] == "replayed" and dep.function("") in result["detail"]
    assert visible(dep.queue("FailureQueue")) == 0


def test_a_kept_scheduled_run_is_never_replayed(account: Account, capsys: pytest.CaptureFixture[str]) -> None:
    dep = account[PDC]
    event = {"version": "0", "id": "1", "detail-type": "Scheduled Event", "source": "aws.scheduler",
             "account": "123456789012", "time": "2026-12-01T06:00:00Z", "region": REGION, "resources": [],
             "detail": {}}
    keep_failure(account, PDC, event, RuntimeError("throttled"))
    code, out, _ = run(capsys, "replay", "post_deploy_checks", "--json")
    [result] = json.loads(out)
    assert code == 1 and result["outcome"] == "refused" and "scheduled run" in result["detail"]
    assert visible(dep.queue("FailureQueue")) == 1
