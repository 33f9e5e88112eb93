"""The ec2_scheduler stack: schedule, its target, the function's environment and the roles' scope."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk.assertions import Match, Template

from stacks.settings import SettingsError, load_settings
from tests.stacks.helpers import build_with, nag_errors, role_statements, template
from tests.stacks.helpers import policy_statements as _statements
from tests.stacks.helpers import statement_actions as _actions

SETTINGS = {
    "interval_minutes": 10,
    "timeout_seconds": 300,
    "regions": ["eu-central-1", "eu-west-1"],
    "kms_key_arns": ["arn:aws:kms:eu-central-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"],
    "schedules": {"office": {"timezone": "Europe/Berlin", "calendar": "s3://ops-calendars/de/holidays.ics",
                             "periods": [{"days": "mon-fri", "start": "08:00", "stop": "18:00"}]},
                  "frozen": {"calendar": "ssm:release-freeze", "periods": [{"days": "sat#1", "start": "09:00"}]}},
    "schedules_parameter": "/opsauto/schedules",
    "calendars": ["s3://ops-calendars/fr/holidays.ics"],
}


@pytest.fixture(scope="module")
def built() -> tuple[Any, Template]:
    assembly = build_with("ec2_scheduler", SETTINGS)
    stack = assembly.stacks["ec2_scheduler"]
    return stack, template(stack)


def test_schedule_rate_without_timezone_and_no_flexible_window(built: tuple[Any, Template]) -> None:
    _, t = built
    t.has_resource_properties("AWS::Scheduler::Schedule", {
        "ScheduleExpression": "rate(10 minutes)",
        "FlexibleTimeWindow": {"Mode": "OFF"},
        "State": "ENABLED",
        "Target": {
            "RetryPolicy": {"MaximumRetryAttempts": 2, "MaximumEventAgeInSeconds": 600},
            "DeadLetterConfig": {"Arn": Match.any_value()},
            "Input": Match.any_value(),
        },
    })
    (schedule,) = t.find_resources("AWS::Scheduler::Schedule").values()
    assert schedule["Properties"].get("ScheduleExpressionTimezone", "Etc/UTC") in ("Etc/UTC", "UTC")
    text = json.dumps(schedule["Properties"]["Target"]["Input"])
    assert "<aws.scheduler.scheduled-time>" in text  # the function's "now"


def test_function_environment_from_settings(built: tuple[Any, Template]) -> None:
    _, t = built
    functions = [f for f in t.find_resources("AWS::Lambda::Function").values()
                 if f["Properties"].get("Environment", {}).get("Variables", {}).get("POWERTOOLS_SERVICE_NAME")
                 == "ec2_scheduler"]
    (function,) = functions
    env = function["Properties"]["Environment"]["Variables"]
    assert json.loads(env["SCHEDULES"])["office"]["timezone"] == "Europe/Berlin"
    assert env["TAG_KEY"] == "Schedule" and env["MODE"] == "enforce" and env["MAX_CHANGES"] == "500"
    assert env["REGIONS"] == "eu-central-1,eu-west-1"
    assert function["Properties"]["Timeout"] == 300


def test_start_stop_conditioned_on_the_tag_key(built: tuple[Any, Template]) -> None:
    _, t = built
    by_action: dict[str, dict[str, Any]] = {}
    for statement in _statements(t):
        for action in _actions(statement):
            by_action[action] = statement
    for action in ("ec2:StartInstances", "ec2:StopInstances", "ec2:CreateTags", "rds:StopDBInstance",
                   "rds:StartDBCluster", "rds:AddTagsToResource", "autoscaling:UpdateAutoScalingGroup",
                   "autoscaling:CreateOrUpdateTags"):
        assert by_action[action]["Condition"]["StringLike"] == {"aws:ResourceTag/Schedule": "*"}, action
        assert by_action[action]["Resource"] != "*"
    assert by_action["ec2:CreateTags"]["Condition"]["ForAllValues:StringEquals"] == {
        "aws:TagKeys": ["ScheduleState", "ScheduleError"]}
    assert by_action["ec2:DeleteTags"]["Condition"]["ForAllValues:StringEquals"] == {"aws:TagKeys": ["ScheduleError"]}
    assert by_action["autoscaling:CreateOrUpdateTags"]["Condition"]["ForAllValues:StringEquals"] == {
        "aws:TagKeys": ["ScheduleState", "ScheduleSizes"]}
    assert by_action["ec2:DeleteTags"]["Condition"]["StringLike"] == {"aws:ResourceTag/Schedule": "*"}
    assert by_action["kms:CreateGrant"]["Condition"] == {"Bool": {"kms:GrantIsForAWSResource": "true"}}
    assert by_action["kms:CreateGrant"]["Resource"] == SETTINGS["kms_key_arns"][0]
    wildcard = sorted(a for s in _statements(t) if s["Resource"] == "*" for a in _actions(s))
    assert wildcard == ["autoscaling:DescribeAutoScalingGroups", "ec2:DescribeInstances", "rds:DescribeDBClusters",
                        "rds:DescribeDBInstances", "xray:PutTelemetryRecords", "xray:PutTraceSegments"]


def test_reads_exactly_the_named_calendars_and_the_parameter(built: tuple[Any, Template]) -> None:
    _, t = built
    by_sid = {s.get("Sid"): s for s in _statements(t)}
    files = by_sid["ReadCalendarFiles"]
    assert _actions(files) == ["s3:GetObject"]
    assert sorted(json.dumps(r) for r in files["Resource"]) == sorted(json.dumps({"Fn::Join": ["", [
        "arn:", {"Ref": "AWS::Partition"}, f":s3:::ops-calendars/{key}"]]}) for key in ("de/holidays.ics",
                                                                                           "fr/holidays.ics"))
    calendars = by_sid["ReadChangeCalendars"]
    assert _actions(calendars) == ["ssm:GetCalendarState"]
    assert "document/release-freeze" in json.dumps(calendars["Resource"])
    parameter = by_sid["ReadSchedulesParameter"]
    assert _actions(parameter) == ["ssm:GetParameter"]
    assert json.dumps(parameter["Resource"]).endswith(':parameter/opsauto/schedules"]]}')


def test_schedules_beyond_the_environment_limit_point_to_the_parameter() -> None:
    many = {f"team-{n:03d}": {"timezone": "Europe/Berlin", "skip_dates": ["*-12-24", "*-12-25", "*-12-26"],
                              "periods": [{"days": "mon-fri", "start": "08:00", "stop": "18:00"}]}
            for n in range(40)}
    with pytest.raises(SettingsError) as info:
        load_settings({"automations": {"ec2_scheduler": {"schedules": many}}})
    assert "Lambda allows 4096 bytes" in str(info.value) and "schedules_parameter" in str(info.value)


def test_schedule_role_invokes_only_the_function(built: tuple[Any, Template]) -> None:
    _, t = built
    statements = role_statements(t, "scheduler.amazonaws.com")
    actions = sorted(a for s in statements for a in _actions(s))
    assert actions == ["lambda:InvokeFunction", "sqs:SendMessage"]
    invoke = next(s for s in statements if _actions(s) == ["lambda:InvokeFunction"])
    assert all("SchedulerFunction" in json.dumps(r) for r in invoke["Resource"])


def test_report_mode_role_is_read_only() -> None:
    from aws_cdk import App
    from aws_cdk.assertions import Template

    from stacks.core_stack import CoreStack
    from stacks.ec2_scheduler_stack import Ec2SchedulerStack
    from stacks.settings import ProjectSettings
    from stacks.settings.ec2_scheduler import Ec2SchedulerSettings

    app = App()
    project = ProjectSettings()
    core = CoreStack(app, "core", project=project)
    stack = Ec2SchedulerStack(app, "report", project=project, settings=Ec2SchedulerSettings(mode="report"),
                              core=core.core)
    actions = {a for s in _statements(Template.from_stack(stack)) for a in _actions(s)}
    assert "ec2:DescribeInstances" in actions
    assert not actions & {"ec2:StartInstances", "ec2:StopInstances", "ec2:CreateTags", "ec2:DeleteTags",
                          "rds:StopDBInstance", "rds:AddTagsToResource", "autoscaling:UpdateAutoScalingGroup",
                          "autoscaling:CreateOrUpdateTags"}


def test_cdk_nag_clean(built: tuple[Any, Template]) -> None:
    stack, _ = built
    assert nag_errors(stack) == []


@pytest.mark.parametrize(("settings", "message"), [
    ({"schedules": {"x": {"timezone": "Europe/Berlni", "periods": [{"start": "08:00"}]}}},
     "automations.ec2_scheduler.schedules.x.timezone: timezone 'Europe/Berlni' is not an IANA timezone"),
    ({"schedules": {"x": {"periods": [{"days": "mon-fry", "start": "08:00"}]}}},
     "schedules.x.periods.0.days: days 'mon-fry': 'fry' is not a day"),
    ({"schedules": {"x": {"periods": [{"start": "25:00"}]}}}, "schedules.x.periods.0.start: start '25:00'"),
    ({"schedules": {"x": {"periods": [{"start": "08:00"}], "skip_dates": ["24.12.2026"]}}},
     "schedules.x.skip_dates: '24.12.2026' is not a date YYYY-MM-DD"),
    ({"schedules": {"x": {"periods": []}}}, "schedules.x.periods: needs at least one period"),
    ({"mode": "dry-run"}, "automations.ec2_scheduler.mode: got 'dry-run'; allowed values: 'enforce' or 'report'"),
    ({"interval_minutes": 2}, "timeout_seconds (180) must be less than interval_minutes (2) x 60"),
    ({"tag_key": "aws:schedule"}, "automations.ec2_scheduler.tag_key"),
    ({"kms_key_arns": ["alias/ebs"]}, "is not a KMS key ARN"),
    ({"schedules": {"x": {"periods": [{"days": "fri#6", "start": "08:00"}]}}},
     "schedules.x.periods.0.days: days 'fri#6': '#6' must be #1 to #5 or #L"),
    ({"schedules": {"x": {"periods": [{"monthdays": "32", "start": "08:00"}]}}},
     "schedules.x.periods.0.monthdays: monthdays '32': 32 is not a day of the month"),
    ({"schedules": {"x": {"periods": [{"months": "jan-mrz", "start": "08:00"}]}}},
     "schedules.x.periods.0.months: months 'jan-mrz': 'mrz' is not a month"),
    ({"schedules": {"x": {"periods": [{"start": "08:00"}], "skip_dates": ["2027-01-01..2026-12-24"]}}},
     "schedules.x.skip_dates: '2027-01-01..2026-12-24': the range ends before it starts"),
    ({"schedules": {"x": {"periods": [{"start": "08:00"}], "calendar": "https://example.com/h.ics"}}},
     "schedules.x.calendar: calendar 'https://example.com/h.ics' must be the S3 URI"),
    ({"schedules": {"x": {"periods": [{"start": "08:00"}], "retain_running": True, "enforced": True}}},
     "automations.ec2_scheduler.schedules.x: retain_running and enforced contradict"),
    ({"schedules_parameter": "aws/reserved"}, "automations.ec2_scheduler.schedules_parameter"),
    ({"calendars": ["ssm:"]}, "automations.ec2_scheduler.calendars"),
])
def test_bad_settings_fail_with_the_key_named(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(SettingsError) as info:
        load_settings({"automations": {"ec2_scheduler": settings}})
    assert message in str(info.value)


# --------------------------------------------------------------------------- organization-wide

ORG = {"enabled": True, "organizational_units": ["ou-ab12-cd34ef56"], "accounts": ["111122223333"],
       "regions": ["eu-central-1", "eu-west-1"], "max_concurrency": 25}
# What the function does to the resources it schedules (its bookkeeping: logs, queues, table, topic, apart).
RESOURCE_SERVICES = ("ec2:", "rds:", "kms:CreateGrant")


def _org(mode: str = "enforce") -> tuple[Any, Any]:
    assembly = build_with("ec2_scheduler", {**SETTINGS, "mode": mode}, project={"organization": ORG})
    assert assembly.member is not None
    return assembly.stacks["ec2_scheduler"], assembly.member


@pytest.fixture(scope="module")
def org_built() -> tuple[Any, Any]:
    return _org()


def _resource_statements(statements: list[dict[str, Any]]) -> list[str]:
    """The statements on scheduled resources, comparable across templates (Sid, actions, resources, conditions)."""
    found = []
    for statement in statements:
        actions = sorted(a for a in _actions(statement) if a.startswith(RESOURCE_SERVICES))
        if actions:
            found.append(json.dumps({"Actions": actions, "Resource": statement["Resource"],
                                     "Condition": statement.get("Condition")}, sort_keys=True))
    return sorted(found)


def _member_role_statements(member: Any) -> list[dict[str, Any]]:
    [role] = [r for r in template(member).find_resources("AWS::IAM::Role").values()
              if r["Properties"].get("RoleName") == "opsauto-member-ec2-scheduler"]
    return [s for p in role["Properties"]["Policies"] for s in p["PolicyDocument"]["Statement"]]


@pytest.mark.parametrize("mode", ["enforce", "report"])
def test_member_role_statements_are_the_functions_own(mode: str) -> None:
    stack, member = _org(mode)
    own = _resource_statements(role_statements(template(stack), "lambda.amazonaws.com"))
    assert own == _resource_statements(_member_role_statements(member))
    if mode == "report":
        assert all(json.loads(s)["Actions"] in (["ec2:DescribeInstances"],
                                                ["rds:DescribeDBClusters", "rds:DescribeDBInstances"],
                                                ["ec2:DescribeInstances", "rds:DescribeDBClusters",
                                                 "rds:DescribeDBInstances"]) for s in own), own


def test_org_wide_fanout_wiring(org_built: tuple[Any, Any]) -> None:
    stack, _ = org_built
    t = template(stack)
    t.has_resource_properties("AWS::Lambda::EventSourceMapping", {
        "BatchSize": 1, "ScalingConfig": {"MaximumConcurrency": 25},
        "FunctionResponseTypes": ["ReportBatchItemFailures"]})
    queues = t.find_resources("AWS::SQS::Queue")
    [work] = [q for q in queues.values() if "RedrivePolicy" in q["Properties"]]
    assert work["Properties"]["RedrivePolicy"]["maxReceiveCount"] == 3
    assert work["Properties"]["VisibilityTimeout"] == 6 * SETTINGS["timeout_seconds"]
    dead_letters = work["Properties"]["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0]
    alarms = t.find_resources("AWS::CloudWatch::Alarm")
    assert any(dead_letters in json.dumps(a["Properties"].get("Dimensions", [])) for a in alarms.values())
    [function] = [f for f in t.find_resources("AWS::Lambda::Function").values()
                  if f["Properties"]["Environment"]["Variables"].get("POWERTOOLS_SERVICE_NAME") == "ec2_scheduler"]
    env = function["Properties"]["Environment"]["Variables"]
    assert env["TARGET_ACCOUNTS"] == "organization,111122223333" and env["TARGET_OUS"] == "ou-ab12-cd34ef56"
    assert env["MEMBER_ROLE_NAME"] == "opsauto-member-ec2-scheduler"
    assert env["REGIONS"] == "eu-central-1,eu-west-1"
    assert {"WORK_QUEUE_URL", "RUN_TABLE_NAME", "WORK_MAX_RECEIVES", "RUN_DEADLINE_SECONDS"} <= set(env)
    t.has_resource_properties("AWS::IAM::Role", {"RoleName": "opsauto-ec2-scheduler-hub"})
    statements = role_statements(t, "lambda.amazonaws.com")
    assume = [s for s in statements if s.get("Sid") == "AssumeMemberRole"]
    assert len(assume) == 1 and ":role/opsauto-member-ec2-scheduler" in json.dumps(assume[0]["Resource"])
    assert nag_errors(stack) == []


def test_without_organization_no_fanout_and_no_target_variables(built: tuple[Any, Template]) -> None:
    _, t = built
    t.resource_count_is("AWS::Lambda::EventSourceMapping", 0)
    t.resource_count_is("AWS::DynamoDB::Table", 0)
    env = json.dumps([f["Properties"]["Environment"] for f in t.find_resources("AWS::Lambda::Function").values()])
    assert "TARGET_ACCOUNTS" not in env and "WORK_QUEUE_URL" not in env
