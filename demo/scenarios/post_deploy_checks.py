"""post_deploy_checks: a CodePipeline job against a healthy and a broken endpoint.

The endpoints are served on 127.0.0.1 over HTTPS by the harness's local receiver (trusted through its CA
bundle). moto has no CodePipeline job API, so a botocore Stubber on the function's own cached client
answers PutJobSuccessResult / PutJobFailureResult and checks each call against the real service model.
"""

from __future__ import annotations

import copy
import json
import secrets
from typing import Any

from botocore.stub import Stubber

from demo.harness import DemoContext, DemoFailure

TITLE = "CodePipeline invoke action: healthy endpoint passes the job, broken endpoint fails it"

JOB_ID = "11111111-abcd-1111-abcd-111111abcdef"

# Shaped as CodePipeline sends it (`sam local generate-event codepipeline job`), UserParameters filled per run.
JOB_EVENT: dict[str, Any] = {
    "CodePipeline.job": {
        "id": JOB_ID,
        "accountId": "123456789012",
        "data": {
            "actionConfiguration": {
                "configuration": {"FunctionName": "opsauto-post-deploy-checks", "UserParameters": "{}"}
            },
            "inputArtifacts": [],
            "outputArtifacts": [],
            "artifactCredentials": {
                "accessKeyId": "AKIAIOSFODNN7EXAMPLE",
                "secretAccessKey": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                "sessionToken": "IQoJb3JpZ2luX2VjEXAMPLE",
            },
        },
    }
}


def _job(user_parameters: dict[str, Any]) -> dict[str, Any]:
    event = copy.deepcopy(JOB_EVENT)
    event["CodePipeline.job"]["data"]["actionConfiguration"]["configuration"]["UserParameters"] = json.dumps(
        user_parameters
    )
    return event


def run(ctx: DemoContext) -> str:
    healthy = ctx.webhook.route("/service-a/health", 200, json.dumps({"status": "ok", "version": "1.4.2"}),
                                "application/json")
    broken = ctx.webhook.route("/service-b/health", 503, "upstream connect error", "text/plain")
    ctx.say(f"serving a healthy endpoint ({healthy}) and a broken one ({broken}) on 127.0.0.1")

    codepipeline = ctx.module("shared.clients").client("codepipeline")
    calls: list[dict[str, Any]] = []

    def record(params: dict[str, Any], model: Any, **_: Any) -> None:
        calls.append({"operation": model.name, "params": copy.deepcopy(params)})

    codepipeline.meta.events.register("before-parameter-build.codepipeline", record)
    # The stack generates the continuation-token key as a secret; here it is made in the embedded AWS.
    token_key = ctx.client("secretsmanager").create_secret(
        Name="opsauto-post-deploy-checks-token-key", SecretString=secrets.token_urlsafe(48))["ARN"]
    env = ctx.function_env(TOKEN_KEY_SECRET_ARN=token_key)
    checks = {"attempts": 2, "interval_seconds": 0.2, "timeout_seconds": 3}
    with Stubber(codepipeline) as stubber:
        stubber.add_response("put_job_success_result", {})
        ctx.invoke(None, _job({**checks, "checks": [
            {"name": "service-a", "url": healthy, "json": {"path": "status", "equals": "ok"}, "max_latency_ms": 2000},
        ]}), env)
        stubber.add_response("put_job_failure_result", {})
        ctx.invoke(None, _job({**checks, "checks": [
            {"name": "service-a", "url": healthy, "json": {"path": "status", "equals": "ok"}},
            {"name": "service-b", "url": broken, "body_contains": "ok"},
        ]}), env)
        stubber.assert_no_pending_responses()

    (ctx.out_dir / "result_calls.json").write_text(json.dumps(calls, indent=2))
    if [c["operation"] for c in calls] != ["PutJobSuccessResult", "PutJobFailureResult"]:
        raise DemoFailure(f"expected one success then one failure, got {[c['operation'] for c in calls]}")
    success, failure = calls[0]["params"], calls[1]["params"]
    ctx.say(f"run 1 -> PutJobSuccessResult outputVariables={success.get('outputVariables')}")
    ctx.say(f"         executionDetails.summary: {success['executionDetails']['summary']}")
    ctx.say(f"run 2 -> PutJobFailureResult type={failure['failureDetails']['type']}")
    ctx.say(f"         message: {failure['failureDetails']['message']}")
    if success.get("outputVariables") != {"checks_passed": "1", "checks_failed": "0"}:
        raise DemoFailure(f"unexpected output variables {success.get('outputVariables')}")
    if failure["failureDetails"]["type"] != "JobFailed" or "service-b (503" not in failure["failureDetails"]["message"]:
        raise DemoFailure(f"the failure does not name service-b: {failure['failureDetails']}")
    log = (ctx.out_dir / "function.log").read_text() if (ctx.out_dir / "function.log").exists() else ""
    if "wJalrXUtnFEMI" in log or "artifactCredentials" in log:
        raise DemoFailure("the job's artifactCredentials reached the function log")
    reports = ctx.reports()
    ctx.say(f"{len(reports)} action report(s) on the ops topic; result calls in {ctx.out_dir / 'result_calls.json'}")
    return "healthy -> PutJobSuccessResult (1 passed); broken -> PutJobFailureResult JobFailed naming service-b"
