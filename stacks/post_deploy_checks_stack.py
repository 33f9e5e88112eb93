"""post_deploy_checks: a reusable construct for post-deployment health checks, and its stack.

``PostDeployChecks`` builds the checks function with the permissions its results need and gives
``action(...)``, a CodePipeline ``LambdaInvokeAction`` to put in any pipeline of the app. The stack
creates the construct and, with ``example_pipeline: true``, an example pipeline that uses it.
"""

from __future__ import annotations

from typing import Any, cast

from aws_cdk import Aws, Duration, Stack
from aws_cdk import aws_codepipeline as codepipeline
from aws_cdk import aws_codepipeline_actions as cpactions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from post_deploy_checks.artifact import parse_checks_file
from post_deploy_checks.config import HOOK_NAMES
from post_deploy_checks.spec import ConfigurationError
from stacks.platform import Core, OpsFunction, secure_bucket, suppress
from stacks.settings import PostDeployChecksSettings, ProjectSettings
from stacks.settings.post_deploy_checks import validate_user_parameters

AUTOMATION = "post_deploy_checks"
PUT_JOB_ACTIONS = ["codepipeline:PutJobSuccessResult", "codepipeline:PutJobFailureResult"]
FAILURE_RETENTION = Duration.days(1)  # the on-failure queue's records hold the job's artifactCredentials


class PostDeployChecks(Construct):
    """The checks function, its permissions, and CodePipeline actions that invoke it.

    Attributes: ``function``, ``ops`` (the :class:`OpsFunction`), ``header_secrets``.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        project: ProjectSettings,
        settings: PostDeployChecksSettings,
        core: Core,
    ) -> None:
        super().__init__(scope, construct_id)
        self._settings = settings
        # The HMAC key of continuation tokens (stabilize and bake): generated, readable by this function only.
        self.token_key = secretsmanager.Secret(
            self, "TokenKey",
            description="post_deploy_checks: HMAC key that authenticates the function's CodePipeline continuation "
            "tokens",
            generate_secret_string=secretsmanager.SecretStringGenerator(password_length=64, exclude_punctuation=True),
            encryption_key=core.key,
        )
        suppress(self.token_key, "AwsSolutions-SMG4", "A random HMAC key for continuation tokens that live at most "
                 "bake time + 30 minutes; rotating it would only fail the jobs in progress at that moment")
        self.ops = OpsFunction(
            self,
            "Checks",
            automation=AUTOMATION,
            project=project,
            core=core,
            description="Post-deployment checks: passes or fails a CodePipeline job or a CodeDeploy lifecycle hook",
            environment=settings.function_environment() | {"TOKEN_KEY_SECRET_ARN": self.token_key.secret_arn},
            memory_mb=settings.memory_mb,
            timeout=Duration.seconds(settings.timeout_seconds),
            # CodePipeline invokes asynchronously; a retry after the job was answered only meets an
            # already-completed job, so one retry is enough for a throttled PutJob*Result.
            retry_attempts=1,
            max_event_age=Duration.hours(1),
            # A failed invocation's record holds the job's artifactCredentials (CodePipeline's temporary keys
            # to the artifact bucket): the project key, and kept one day (the job itself has long timed out).
            failure_queue_key=core.key,
            failure_retention=FAILURE_RETENTION,
        )
        self.function: lambda_.IFunction = self.ops.function
        # One alias per lifecycle hook: an AppSpec names the alias of each hook (``Hooks: - AfterAllowTestTraffic:
        # <function ARN>:AfterAllowTestTraffic``), so the function knows which hook's checks to run.
        self.hook_aliases: dict[str, lambda_.Alias] = {}
        if settings.checks is not None:
            version = self.ops.function.current_version
            self.hook_aliases = {name: lambda_.Alias(self, f"Hook{name}", alias_name=name, version=version)
                                 for name in HOOK_NAMES}
        role = self.ops.role

        # CodePipeline's job result APIs have no resource-level permissions. LambdaInvokeAction adds the
        # same statement to the role's default policy when the action is bound to a pipeline; granting it
        # here too keeps a pipeline in another stack (or account setup) from missing it, and CDK merges the two.
        role.add_to_principal_policy(iam.PolicyStatement(actions=PUT_JOB_ACTIONS, resources=["*"]))
        default_policy = cast(Construct, role.node.find_child("DefaultPolicy"))
        suppress(default_policy, "AwsSolutions-IAM5", "codepipeline:PutJobSuccessResult/PutJobFailureResult support "
                 "no resource-level permissions (the job id is not an ARN); this is the only '*' statement of this "
                 "policy (asserted by the stack test)", applies_to=["Resource::*"])

        groups = [f"deploymentgroup:{app}/*" for app in settings.codedeploy_applications] or ["deploymentgroup:*"]
        group_arns = [_account_arn("codedeploy", group) for group in groups]
        codedeploy_policy = iam.Policy(self, "CodeDeployHooksPolicy", statements=[
            iam.PolicyStatement(actions=["codedeploy:PutLifecycleEventHookExecutionStatus"],
                                resources=[arn for arn, _ in group_arns])
        ])
        codedeploy_policy.attach_to_role(role)
        suppress(codedeploy_policy, "AwsSolutions-IAM5", "The function answers lifecycle hooks of deployment groups "
                 "created after it (the setting codedeploy_applications narrows this to named applications); "
                 "limited to this account and region", applies_to=[f"Resource::{shown}" for _, shown in group_arns])

        alarm_arn, alarm_shown = _account_arn("cloudwatch", "alarm:*")
        alarms_policy = iam.Policy(self, "AlarmsPolicy", statements=[
            iam.PolicyStatement(actions=["cloudwatch:DescribeAlarms"], resources=[alarm_arn])
        ])
        alarms_policy.attach_to_role(role)
        suppress(alarms_policy, "AwsSolutions-IAM5", "Alarm names come from each pipeline action's UserParameters, "
                 "known only at run time; read-only and limited to this account and region's alarms",
                 applies_to=[f"Resource::{alarm_shown}"])

        self.header_secrets = [
            secretsmanager.Secret.from_secret_name_v2(self, f"HeaderSecret{index}", name)
            for index, name in enumerate(settings.header_secrets)
        ]
        # GetSecretValue only (Powertools' get_secret); CDK's grant_read adds DescribeSecret, never called.
        role.add_to_principal_policy(iam.PolicyStatement(
            actions=["secretsmanager:GetSecretValue"],
            resources=[self.token_key.secret_arn, *(secret.secret_full_arn or f"{secret.secret_arn}-??????"
                                                     for secret in self.header_secrets)]))

    def action(
        self,
        stage_action_name: str,
        user_parameters: dict[str, Any],
        run_order: int | None = None,
        *,
        inputs: list[codepipeline.Artifact] | None = None,
        variables_namespace: str | None = None,
    ) -> cpactions.LambdaInvokeAction:
        """A CodePipeline action that runs ``user_parameters``' checks (validated now, at synth).

        Output variables: ``checks_passed`` and ``checks_failed`` (in ``variables_namespace`` if given).
        """
        where = f"{stage_action_name}: user_parameters"
        if "checks_file" in user_parameters:
            _check_checks_file(user_parameters, inputs or [], where)
            used: tuple[str, ...] = ()
        else:
            used = validate_user_parameters(user_parameters, where).secret_names
        missing = [name for name in used if name not in self._settings.header_secrets]
        if missing:
            raise ValueError(f"{stage_action_name}: user_parameters use header secret(s) {', '.join(missing)} that "
                             "are not in the post_deploy_checks header_secrets setting")
        return cpactions.LambdaInvokeAction(
            action_name=stage_action_name,
            lambda_=self.function,
            user_parameters=user_parameters,
            run_order=run_order,
            inputs=inputs,
            variables_namespace=variables_namespace,
        )


def _check_checks_file(user_parameters: dict[str, Any], inputs: list[codepipeline.Artifact], where: str) -> None:
    """A checks file is read from an input artifact: the action needs one (the named one, when named)."""
    try:
        reference = parse_checks_file(user_parameters, where)
    except ConfigurationError as exc:
        raise ValueError(str(exc)) from None
    names = [item.artifact_name for item in inputs]
    if not names:
        raise ValueError(f"{where}: checks_file {reference.path} is read from the action's input artifact; give "
                         "the action inputs=[<the source artifact>]")
    if reference.artifact is not None and reference.artifact not in names:
        raise ValueError(f"{where}: artifact {reference.artifact!r} is not one of the action's inputs "
                         f"({', '.join(str(name) for name in names)})")


def _account_arn(service: str, resource: str) -> tuple[str, str]:
    """An ARN of this account and region (as tokens), and the same ARN as cdk-nag prints it in findings."""
    arn = f"arn:{Aws.PARTITION}:{service}:{Aws.REGION}:{Aws.ACCOUNT_ID}:{resource}"
    return arn, f"arn:<AWS::Partition>:{service}:<AWS::Region>:<AWS::AccountId>:{resource}"


class PostDeployChecksStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        project: ProjectSettings,
        settings: PostDeployChecksSettings,
        core: Core,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.checks = PostDeployChecks(self, "PostDeployChecks", project=project, settings=settings, core=core)
        self.pipeline: codepipeline.Pipeline | None = None
        if settings.example_pipeline:
            self.pipeline = self._example_pipeline(settings)

    def _example_pipeline(self, settings: PostDeployChecksSettings) -> codepipeline.Pipeline:
        access_logs = secure_bucket(
            self, "ExampleAccessLogs",
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_PREFERRED,
            lifecycle_rules=[s3.LifecycleRule(expiration=Duration.days(90),
                                              noncurrent_version_expiration=Duration.days(30))],
            unlogged_reason="This bucket receives the example buckets' server access logs; "
            "logging it to itself would loop",
        )
        # versioned (the default): an S3 source action needs versioning
        source = secure_bucket(self, "ExampleSource", access_logs=access_logs, access_logs_prefix="source/")
        artifacts = secure_bucket(
            self, "ExampleArtifacts",
            access_logs=access_logs,
            access_logs_prefix="artifacts/",
            lifecycle_rules=[s3.LifecycleRule(expiration=Duration.days(30),
                                              noncurrent_version_expiration=Duration.days(7))],
        )
        source_output = codepipeline.Artifact("Source")
        pipeline = codepipeline.Pipeline(
            self, "ExamplePipeline",
            pipeline_type=codepipeline.PipelineType.V2,
            artifact_bucket=artifacts,
            restart_execution_on_update=False,
            stages=[
                codepipeline.StageProps(stage_name="Source", actions=[
                    cpactions.S3SourceAction(action_name="Source", bucket=source, bucket_key="source.zip",
                                             output=source_output, trigger=cpactions.S3Trigger.NONE),
                ]),
                codepipeline.StageProps(stage_name="Verify", actions=[
                    self.checks.action("PostDeployChecks", settings.example_user_parameters,
                                       variables_namespace="Checks"),
                ]),
            ],
        )
        artifacts_id = self.get_logical_id(artifacts.node.default_child)  # type: ignore[arg-type]
        function_id = self.get_logical_id(self.checks.ops.function.node.default_child)  # type: ignore[arg-type]
        suppress(pipeline, "AwsSolutions-IAM5", "CDK's grants for the pipeline and its source action: the "
                 "artifact bucket's objects (written and read per execution, under generated keys) with S3's "
                 "action groups; scoped to the example's own buckets",
                 applies_to=["Action::s3:GetObject*", "Action::s3:GetBucket*", "Action::s3:List*",
                             "Action::s3:DeleteObject*", "Action::s3:Abort*", f"Resource::<{artifacts_id}.Arn>/*"])
        invoke_role = cast(Construct, pipeline.node.find_child("Verify").node.find_child("PostDeployChecks")
                           .node.find_child("CodePipelineActionRole"))
        suppress(invoke_role, "AwsSolutions-IAM5", "CodePipeline's Lambda invoke action needs lambda:ListFunctions "
                 "(no resource-level permissions) and may invoke any version of the one checks function",
                 applies_to=["Resource::*", f"Resource::<{function_id}.Arn>:*"])
        return pipeline
