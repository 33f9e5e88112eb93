"""The post_deploy_checks stack: the function's permissions, its environment and the example pipeline."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk import App, Stack
from aws_cdk import aws_codepipeline as codepipeline
from aws_cdk import aws_codepipeline_actions as cpactions
from aws_cdk import aws_s3 as s3
from aws_cdk.assertions import Template

from post_deploy_checks.config import HOOK_NAMES
from stacks.post_deploy_checks_stack import PostDeployChecks, PostDeployChecksStack
from stacks.settings import PostDeployChecksSettings, SettingsError, load_settings
from tests.stacks.helpers import TEST_ENV, build_with, nag_errors, role_statements, template
from tests.stacks.helpers import statement_actions as _actions

SETTINGS: dict[str, Any] = {
    "example_pipeline": True,
    "header_secrets": ["api-token"],
    "codedeploy_applications": ["shop"],
    "timeout_seconds": 120,
    "checks": {"checks": [{"name": "api", "url": "https://api.example/health",
                           "headers": {"Authorization": {"secret": "api-token"}}}], "attempts": 2},
}


@pytest.fixture(scope="module")
def stack() -> Stack:
    return build_with("post_deploy_checks", SETTINGS).stacks["post_deploy_checks"]


@pytest.fixture(scope="module")
def tpl(stack: Stack) -> Template:
    return template(stack)


def _checks_policies(tpl: Template) -> list[dict[str, Any]]:
    """Statements of the policies attached to the checks function's role."""
    return role_statements(tpl, "lambda.amazonaws.com")


def test_function_environment(tpl: Template) -> None:
    functions = tpl.find_resources("AWS::Lambda::Function").values()
    (function,) = [f for f in functions
                   if f["Properties"]["Environment"]["Variables"].get("POWERTOOLS_SERVICE_NAME")
                   == "post_deploy_checks"]
    props = function["Properties"]
    env = props["Environment"]["Variables"]
    assert json.loads(env["CHECKS"]) == SETTINGS["checks"]
    assert env["HEADER_SECRETS"] == "api-token"
    assert env["SECRETS_MAX_AGE_SECONDS"] == "300"
    # the settings model's environment, as it is, plus the platform's own variables
    settings = load_settings({"automations": {"post_deploy_checks": SETTINGS}}).automations.post_deploy_checks
    assert settings.function_environment().items() <= env.items()
    assert "NOTIFY_TOPIC_ARN" in env
    assert props["Timeout"] == 120 and props["Handler"] == "handler.handler"


def test_one_alias_per_lifecycle_hook(tpl: Template) -> None:
    aliases = tpl.find_resources("AWS::Lambda::Alias")
    assert sorted(a["Properties"]["Name"] for a in aliases.values()) == sorted(HOOK_NAMES)
    (version_id,) = tpl.find_resources("AWS::Lambda::Version")
    assert all(a["Properties"]["FunctionVersion"] == {"Fn::GetAtt": [version_id, "Version"]}
               for a in aliases.values())


def test_the_example_pipeline_bakes(tpl: Template) -> None:
    (pipeline,) = tpl.find_resources("AWS::CodePipeline::Pipeline").values()
    verify = next(stage for stage in pipeline["Properties"]["Stages"] if stage["Name"] == "Verify")["Actions"][0]
    parameters = json.loads(verify["Configuration"]["UserParameters"])
    assert parameters["bake_seconds"] == 300 and parameters["bake_interval_seconds"] == 60


def test_put_job_result_permissions_are_granted(tpl: Template) -> None:
    statements = _checks_policies(tpl)
    put_job = [s for s in statements if "codepipeline:PutJobSuccessResult" in _actions(s)]
    assert put_job and all(s["Resource"] == "*" for s in put_job)
    assert {"codepipeline:PutJobSuccessResult", "codepipeline:PutJobFailureResult"} <= set(_actions(put_job[0]))
    # The only "*" resources of the role: these two (no resource-level permissions) and X-Ray.
    wildcard = sorted(a for s in statements if s["Resource"] == "*" for a in _actions(s))
    assert wildcard == ["codepipeline:PutJobFailureResult", "codepipeline:PutJobSuccessResult",
                        "xray:PutTelemetryRecords", "xray:PutTraceSegments"]


def test_codedeploy_alarms_and_secret_permissions_are_scoped(tpl: Template) -> None:
    statements = {a: s for s in _checks_policies(tpl) for a in _actions(s)}
    codedeploy = json.dumps(statements["codedeploy:PutLifecycleEventHookExecutionStatus"]["Resource"])
    assert ":deploymentgroup:shop/*" in codedeploy and '"AWS::AccountId"' in codedeploy
    alarms = json.dumps(statements["cloudwatch:DescribeAlarms"]["Resource"])
    assert ":alarm:*" in alarms and '"AWS::AccountId"' in alarms
    readable = [json.dumps(s["Resource"]) for s in _checks_policies(tpl) if "secretsmanager:GetSecretValue" in
                _actions(s)]
    assert any(":secret:api-token-??????" in resource for resource in readable)
    # the continuation-token key: the stack's own generated secret, readable by the function, in its environment
    (key_id,) = tpl.find_resources("AWS::SecretsManager::Secret")
    assert any(json.dumps({"Ref": key_id}) in resource for resource in readable)
    functions = [f for f in tpl.find_resources("AWS::Lambda::Function").values()
                 if f["Properties"]["Environment"]["Variables"].get("POWERTOOLS_SERVICE_NAME") == "post_deploy_checks"]
    assert functions[0]["Properties"]["Environment"]["Variables"]["TOKEN_KEY_SECRET_ARN"] == {"Ref": key_id}


def test_example_pipeline_invokes_the_checks(tpl: Template) -> None:
    (pipeline,) = tpl.find_resources("AWS::CodePipeline::Pipeline").values()
    props = pipeline["Properties"]
    assert props["PipelineType"] == "V2"
    stages = {stage["Name"]: stage for stage in props["Stages"]}
    assert list(stages) == ["Source", "Verify"]
    (source,) = stages["Source"]["Actions"]
    assert source["ActionTypeId"]["Provider"] == "S3"
    assert source["Configuration"]["S3ObjectKey"] == "source.zip"
    (verify,) = stages["Verify"]["Actions"]
    assert verify["ActionTypeId"] == {"Category": "Invoke", "Owner": "AWS", "Provider": "Lambda", "Version": "1"}
    assert verify["Namespace"] == "Checks"
    user_parameters = json.loads(verify["Configuration"]["UserParameters"])
    assert user_parameters["checks"][0]["name"] == "homepage"


def test_example_buckets_encrypted_ssl_only_versioned_private(tpl: Template) -> None:
    buckets = tpl.find_resources("AWS::S3::Bucket")
    assert len(buckets) == 3  # source, artifacts, access logs
    for bucket in buckets.values():
        props = bucket["Properties"]
        assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
        assert props["VersioningConfiguration"] == {"Status": "Enabled"}
        assert props["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True, "BlockPublicPolicy": True, "IgnorePublicAcls": True,
            "RestrictPublicBuckets": True}
    policies = tpl.find_resources("AWS::S3::BucketPolicy")
    assert len(policies) == 3
    for policy in policies.values():
        assert any(s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
                   for s in policy["Properties"]["PolicyDocument"]["Statement"])


def test_cdk_nag_clean(stack: Stack) -> None:
    assert nag_errors(stack) == []


def test_without_example_pipeline_only_the_function() -> None:
    app = App()
    from stacks.core_stack import CoreStack

    project = load_settings({"automations": {"post_deploy_checks": {"enabled": True}}})
    core = CoreStack(app, "core", project=project, env=TEST_ENV)
    stack = PostDeployChecksStack(app, "checks", project=project, settings=project.automations.post_deploy_checks,
                                  core=core.core, env=TEST_ENV)
    # The construct in a user's own pipeline (another stack): the action validates its parameters.
    other = Stack(app, "user-pipeline", env=TEST_ENV)
    checks: PostDeployChecks = stack.checks
    source_output = codepipeline.Artifact("Source")
    bucket = s3.Bucket(other, "Src", versioned=True)
    with pytest.raises(ValueError, match=r"Verify: user_parameters.*attempts"):
        checks.action("Verify", {"alarms": ["a"], "attempts": 0})
    with pytest.raises(ValueError, match="header secret"):
        checks.action("Verify", {"checks": [{"name": "a", "url": "https://a.example/",
                                             "headers": {"X": {"secret": "undeclared"}}}]})
    with pytest.raises(ValueError, match="method HEAD gets no body"):
        checks.action("Verify", {"checks": [{"name": "h", "url": "https://a.example/", "method": "HEAD",
                                             "body_contains": "ok"}]})
    with pytest.raises(ValueError, match=r"checks_file deploy/checks\.json is read from the action's input artifact"):
        checks.action("Verify", {"checks_file": "deploy/checks.json"})
    with pytest.raises(ValueError, match="artifact 'Build' is not one of the action's inputs"):
        checks.action("Verify", {"checks_file": "deploy/checks.json", "artifact": "Build"}, inputs=[source_output])
    # CodePipeline refuses UserParameters over 1,000 characters at deploy time: say so at synth.
    too_long = {"alarms": [f"service-{index:02d}-latency-p99-over-threshold" for index in range(30)]}
    with pytest.raises(ValueError, match=r"Verify: user_parameters: 1\d\d\d characters of JSON, over CodePipeline's "
                                         r"limit of 1000 for UserParameters"):
        checks.action("Verify", too_long)
    codepipeline.Pipeline(other, "Pipeline", stages=[
        codepipeline.StageProps(stage_name="Source", actions=[
            cpactions.S3SourceAction(action_name="Src", bucket=bucket, bucket_key="a.zip", output=source_output)]),
        codepipeline.StageProps(stage_name="Verify", actions=[
            checks.action("Checks", {"alarms": ["api-5xx"]}, run_order=2),
            checks.action("FromSource", {"checks_file": "deploy/checks.json"}, run_order=3,
                          inputs=[source_output])]),
    ])
    tpl = Template.from_stack(stack)
    tpl.resource_count_is("AWS::CodePipeline::Pipeline", 0)
    tpl.resource_count_is("AWS::S3::Bucket", 0)
    env = tpl.find_resources("AWS::Lambda::Function")
    assert all(f["Properties"]["Environment"]["Variables"]["CHECKS"] == "" for f in env.values())
    (pipeline,) = Template.from_stack(other).find_resources("AWS::CodePipeline::Pipeline").values()
    verify = pipeline["Properties"]["Stages"][1]["Actions"][0]
    assert verify["RunOrder"] == 2
    assert json.loads(verify["Configuration"]["UserParameters"]) == {"alarms": ["api-5xx"]}


@pytest.mark.parametrize(("settings", "message"), [
    ({"checks": {"checks": [{"name": "a", "url": "nope"}]}},
     "automations.post_deploy_checks.checks: checks[0] (a).url"),
    ({"checks": {"alarms": ["a"], "stabilize_seconds": 30}}, "stabilize_seconds is only for CodePipeline"),
    ({"header_secrets": ["arn:aws:secretsmanager:eu-west-1:1:secret:x"]}, "give the name, not the ARN"),
    ({"example_user_parameters": {"checks": [{"name": "a", "url": "https://a/", "headers": {"X": {"secret": "s"}}}]}},
     "uses header secret(s) s that are not in header_secrets"),
    ({"codedeploy_applications": ["bad app"]}, "is not a CodeDeploy application name"),
    ({"example_user_parameters": {"alarms": [f"service-{index:02d}-latency-p99-over-threshold"
                                             for index in range(30)]}},
     "over CodePipeline's limit of 1000 for UserParameters"),
    ({"example_pipeline": "maybe"}, "automations.post_deploy_checks.example_pipeline"),
])
def test_bad_settings_fail_with_a_clear_message(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(SettingsError) as info:
        load_settings({"automations": {"post_deploy_checks": settings}})
    assert message in str(info.value)


def test_every_setting_has_a_default_and_description() -> None:
    PostDeployChecksSettings()
    for name, field in PostDeployChecksSettings.model_fields.items():
        assert field.description, name
