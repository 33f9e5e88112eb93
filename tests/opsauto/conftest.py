"""Deployed stacks simulated in moto from the synthesized templates, for the operator command's tests.

The app is synthesized in process (the real CDK app). Each automation stack's template is deployed with
moto's CloudFormation, reduced to what the command reads (functions with their real environment, queues
with their redrive policies, dashboards); what moto's CloudFormation does not create (Lambda event invoke
configs, CloudWatch alarms) is created with the API calls CloudFormation would make, from the template.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

REGION = "us-east-1"
SYNTHESIZED = ("image_resize", "post_deploy_checks")
KEPT_TYPES = ("AWS::Lambda::Function", "AWS::SQS::Queue", "AWS::CloudWatch::Dashboard")


@pytest.fixture(scope="session")
def templates() -> dict[str, dict[str, Any]]:
    """stack name -> synthesized template (image_resize with its queue trigger)."""
    from aws_cdk import App

    from stacks.assembly import build

    context = json.loads((Path(__file__).resolve().parents[2] / "cdk.json").read_text())["context"]
    context["automations"]["image_resize"]["trigger"] = "queue"
    with tempfile.TemporaryDirectory(prefix="opsauto-test-") as outdir:
        app = App(outdir=outdir)
        assembly = build(context, ",".join(SYNTHESIZED), app=app, nag=False)
        app.synth()
        return {stack.stack_name: json.loads((Path(outdir) / f"{stack.stack_name}.template.json").read_text())
                for stack in assembly.stacks.values()}


@dataclass
class Deployment:
    stack_name: str
    physical: dict[str, str] = field(default_factory=dict)  # logical id -> physical id (function name, queue URL)
    arns: dict[str, str] = field(default_factory=dict)  # logical id -> ARN
    alarms: dict[str, str] = field(default_factory=dict)  # logical id -> alarm name

    def function(self, fragment: str = "") -> str:
        names = [p for logical, p in self.physical.items() if fragment in logical and not p.startswith("https://")]
        return names[0]

    def queue(self, fragment: str) -> str:
        return next(p for logical, p in self.physical.items() if fragment in logical and p.startswith("https://"))


def _resolve(value: Any, dep: Deployment) -> Any:
    """References to kept resources stay for moto's CloudFormation; anything else becomes a plain string."""
    if isinstance(value, dict):
        if set(value) == {"Ref"}:
            return value if value["Ref"] in dep.physical else f"resolved-{value['Ref']}"
        if set(value) == {"Fn::GetAtt"}:
            return value if value["Fn::GetAtt"][0] in dep.physical else f"resolved-{value['Fn::GetAtt'][0]}"
        if len(value) == 1 and next(iter(value)).startswith("Fn::"):
            return "resolved"
        return {k: _resolve(v, dep) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve(v, dep) for v in value]
    return value


def _reduced(resources: dict[str, Any], dep: Deployment) -> dict[str, Any]:
    """The template moto deploys: functions (stub code, real environment), queues, dashboards."""
    reduced: dict[str, Any] = {"TestRole": {"Type": "AWS::IAM::Role", "Properties": {"AssumeRolePolicyDocument": {
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
                                                "Action": "sts:AssumeRole"}]}}}}
    for logical, res in resources.items():
        props = res.get("Properties", {})
        if res["Type"] == "AWS::Lambda::Function":
            env = {k: v if isinstance(v, str) else f"resolved-{k}"
                   for k, v in props.get("Environment", {}).get("Variables", {}).items()}
            reduced[logical] = {"Type": res["Type"], "Properties": {
                "Runtime": props["Runtime"], "Handler": props["Handler"], "Role": {"Fn::GetAtt": ["TestRole", "Arn"]},
                "Code": {"ZipFile": "def handler(event, context):\n    return None\n"},
                "Environment": {"Variables": env}}}
        elif res["Type"] == "AWS::SQS::Queue":
            kept = {k: _resolve(v, dep) for k, v in props.items() if k in ("RedrivePolicy", "MessageRetentionPeriod",
                                                                           "VisibilityTimeout")}
            reduced[logical] = {"Type": res["Type"], "Properties": kept}
        elif res["Type"] == "AWS::CloudWatch::Dashboard":
            name = props.get("DashboardName")
            reduced[logical] = {"Type": res["Type"], "Properties": {
                **({"DashboardName": name} if isinstance(name, str) else {}), "DashboardBody": '{"widgets": []}'}}
    return reduced


def deploy(stack_name: str, template: dict[str, Any]) -> Deployment:
    dep = Deployment(stack_name)
    resources = template["Resources"]
    for logical, res in resources.items():
        if res["Type"] in KEPT_TYPES:
            dep.physical[logical] = "pending"
    reduced = _reduced(resources, dep)
    cfn = boto3.client("cloudformation", region_name=REGION)
    cfn.create_stack(StackName=stack_name, TemplateBody=json.dumps({"Resources": reduced}))
    sqs = boto3.client("sqs", region_name=REGION)
    lam = boto3.client("lambda", region_name=REGION)
    for summary in cfn.list_stack_resources(StackName=stack_name)["StackResourceSummaries"]:
        logical = summary["LogicalResourceId"]
        if logical in dep.physical:
            dep.physical[logical] = summary["PhysicalResourceId"]
            if summary["ResourceType"] == "AWS::SQS::Queue":
                dep.arns[logical] = sqs.get_queue_attributes(
                    QueueUrl=summary["PhysicalResourceId"], AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
            elif summary["ResourceType"] == "AWS::Lambda::Function":
                dep.arns[logical] = lam.get_function(FunctionName=summary["PhysicalResourceId"])[
                    "Configuration"]["FunctionArn"]
    _post_create(dep, resources)
    return dep


def _post_create(dep: Deployment, resources: dict[str, Any]) -> None:
    """What moto's CloudFormation skips: event invoke configs (failure destinations) and alarms."""
    lam = boto3.client("lambda", region_name=REGION)
    cw = boto3.client("cloudwatch", region_name=REGION)
    for logical, res in resources.items():
        props = res.get("Properties", {})
        if res["Type"] == "AWS::Lambda::EventInvokeConfig":
            function = dep.physical[props["FunctionName"]["Ref"]]
            target = props["DestinationConfig"]["OnFailure"]["Destination"]["Fn::GetAtt"][0]
            lam.put_function_event_invoke_config(
                FunctionName=function, MaximumRetryAttempts=props.get("MaximumRetryAttempts", 2),
                DestinationConfig={"OnFailure": {"Destination": dep.arns[target]}})
        elif res["Type"] == "AWS::CloudWatch::Alarm":
            given = props.get("AlarmName")
            name = given if isinstance(given, str) else f"{dep.stack_name}-{logical}-X1"
            cw.put_metric_alarm(
                AlarmName=name, AlarmDescription=str(props.get("AlarmDescription", "")),
                MetricName=props.get("MetricName", "Errors"), Namespace=props.get("Namespace", "AWS/Lambda"),
                Statistic="Sum", Period=int(props.get("Period", 60)), EvaluationPeriods=int(props["EvaluationPeriods"]),
                Threshold=float(props["Threshold"]), ComparisonOperator=props["ComparisonOperator"])
            dep.alarms[logical] = name


@dataclass
class Account:
    deployments: dict[str, Deployment]

    def __getitem__(self, stack_name: str) -> Deployment:
        return self.deployments[stack_name]


@pytest.fixture
def account(templates: dict[str, dict[str, Any]], monkeypatch: pytest.MonkeyPatch) -> Iterator[Account]:
    monkeypatch.setenv("AWS_REGION", REGION)
    with mock_aws(config={"lambda": {"use_docker": False}}):
        yield Account({name: deploy(name, template) for name, template in templates.items()})


def put_activity(function_name: str, at: datetime, invocations: int, errors: int = 0) -> None:
    boto3.client("cloudwatch", region_name=REGION).put_metric_data(Namespace="AWS/Lambda", MetricData=[
        {"MetricName": name, "Dimensions": [{"Name": "FunctionName", "Value": function_name}],
         "Timestamp": at, "Value": float(value), "Unit": "Count"}
        for name, value in (("Invocations", invocations), ("Errors", errors))])


def minutes_ago(n: int) -> datetime:
    return (datetime.now(UTC) - timedelta(minutes=n)).replace(second=0, microsecond=0)
