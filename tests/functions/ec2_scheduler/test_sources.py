"""Full runs against moto (and Stubber for SSM Change Calendar): Auto Scaling groups, RDS maintenance
windows, retain_running, schedules from SSM Parameter Store, iCalendar files in S3, Change Calendars."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from tests.functions.ec2_scheduler.conftest import REGION, SCHEDULES, Account

Run = Callable[..., dict[str, Any]]

# 2026-11-30 is a Monday; Europe/Berlin is UTC+1 in winter.
MON_2100 = "2026-11-30T20:00:00Z"
TUE_0805 = "2026-12-01T07:05:00Z"

HOLIDAYS_ICS = """BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//opsauto tests//holidays//EN
BEGIN:VEVENT
UID:company-day@example.com
DTSTAMP:20260101T000000Z
DTSTART;VALUE=DATE:20261201
DTEND;VALUE=DATE:20261202
SUMMARY:Company day
END:VEVENT
BEGIN:VEVENT
UID:first-wednesday@example.com
DTSTAMP:20260101T000000Z
DTSTART;VALUE=DATE:20260107
RRULE:FREQ=MONTHLY;BYDAY=1WE
EXDATE;VALUE=DATE:20261202
SUMMARY:Quiet Wednesday
END:VEVENT
BEGIN:VEVENT
UID:meeting@example.com
DTSTAMP:20260101T000000Z
DTSTART:20261203T090000Z
DTEND:20261203T100000Z
SUMMARY:A meeting is no holiday
END:VEVENT
END:VCALENDAR
"""


def _group(account: Account, name: str, schedule: str, sizes: tuple[int, int, int]) -> Any:
    autoscaling = boto3.client("autoscaling", REGION)
    template = account.ec2.create_launch_template(
        LaunchTemplateName=f"lt-{name}", LaunchTemplateData={"ImageId": "ami-12c6146b", "InstanceType": "t3.micro"}
    )["LaunchTemplate"]
    subnet = account.ec2.describe_subnets()["Subnets"][0]["SubnetId"]
    autoscaling.create_auto_scaling_group(
        AutoScalingGroupName=name, MinSize=sizes[0], DesiredCapacity=sizes[1], MaxSize=sizes[2],
        VPCZoneIdentifier=subnet, LaunchTemplate={"LaunchTemplateId": template["LaunchTemplateId"]},
        Tags=[{"Key": "Schedule", "Value": schedule, "PropagateAtLaunch": True}],
    )
    return autoscaling


def _group_state(autoscaling: Any, name: str) -> tuple[tuple[int, int, int], dict[str, str]]:
    group = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"][0]
    return (group["MinSize"], group["DesiredCapacity"], group["MaxSize"]), {t["Key"]: t["Value"] for t in group["Tags"]}


# ------------------------------------------------------------------------------------ Auto Scaling groups


def test_asg_scaled_in_outside_the_period_and_restored_inside(account: Account, run: Run) -> None:
    autoscaling = _group(account, "web", "office", (1, 2, 4))
    members = [i["InstanceId"] for i in autoscaling.describe_auto_scaling_groups()["AutoScalingGroups"][0]["Instances"]]

    result = run(MON_2100)  # outside the period: scaled in, sizes kept on the group
    assert result["stopped"] == ["web"] and result["decisions"]["skip"] == len(members)
    sizes, tags = _group_state(autoscaling, "web")
    assert sizes == (0, 0, 0)
    assert tags["ScheduleSizes"] == "min=1,desired=2,max=4"
    assert tags["ScheduleState"] == "stopped@2026-11-30T20:00:00Z"
    assert account.ops("StopInstances") == []  # its instances are not scheduled one by one
    (report,) = account.reports()
    assert "Auto Scaling group `web [us-east-1]`" in report["content"]["description"]
    assert "sets min 0, desired 0, max 0" in report["content"]["description"]

    result = run("2026-11-30T20:05:00Z")  # again: nothing to do, the kept sizes are not overwritten
    assert result["stopped"] == [] and _group_state(autoscaling, "web")[1]["ScheduleSizes"] == "min=1,desired=2,max=4"

    result = run(TUE_0805)
    assert result["started"] == ["web"]
    assert _group_state(autoscaling, "web")[0] == (1, 2, 4)
    assert "restores min 1, desired 2, max 4" in account.reports()[-1]["content"]["description"]


def test_asg_report_mode_says_what_it_would_set(account: Account, run: Run) -> None:
    autoscaling = _group(account, "batch", "office", (2, 2, 2))
    result = run(MON_2100, MODE="report")
    assert result["wouldStop"] == ["batch"]
    assert _group_state(autoscaling, "batch")[0] == (2, 2, 2)
    assert account.ops("UpdateAutoScalingGroup", "CreateOrUpdateTags") == []
    (report,) = account.reports()
    assert "Would stop" in report["content"]["description"]
    assert "sets min 0, desired 0, max 0" in report["content"]["description"]


def test_asg_without_recorded_sizes_is_a_problem_not_a_guess(account: Account, run: Run) -> None:
    autoscaling = _group(account, "empty", "office", (0, 0, 0))
    autoscaling.create_or_update_tags(Tags=[{"ResourceId": "empty", "ResourceType": "auto-scaling-group",
                                             "Key": "ScheduleState", "Value": "stopped@2026-11-30T17:05:00Z",
                                             "PropagateAtLaunch": False}])
    result = run(TUE_0805)
    assert result["started"] == [] and "ScheduleSizes" in result["problems"]["empty"]
    assert _group_state(autoscaling, "empty")[0] == (0, 0, 0)


# ------------------------------------------------------------------------------------ RDS maintenance


def _database(account: Account, identifier: str, schedule: str, window: str) -> None:
    account.rds.create_db_instance(
        DBInstanceIdentifier=identifier, Engine="postgres", DBInstanceClass="db.t3.micro", MasterUsername="admin1",
        MasterUserPassword="password123", AllocatedStorage=20, PreferredMaintenanceWindow=window,
        Tags=[{"Key": "Schedule", "Value": schedule}],
    )


def _db_status(account: Account, identifier: str) -> str:
    return str(account.rds.describe_db_instances(DBInstanceIdentifier=identifier)["DBInstances"][0]["DBInstanceStatus"])


def test_rds_started_for_its_maintenance_window_and_stopped_after(account: Account, run: Run) -> None:
    schedules = {**SCHEDULES, "office-patched": {**SCHEDULES["office"], "maintenance_window": True}}
    env = {"SCHEDULES": json.dumps(schedules)}
    _database(account, "patched", "office-patched", "tue:03:00-tue:03:30")  # UTC
    _database(account, "plain", "office", "tue:03:00-tue:03:30")
    run(MON_2100, **env)
    assert _db_status(account, "patched") == "stopped" and _db_status(account, "plain") == "stopped"

    result = run("2026-12-01T02:40:00Z", **env)  # 20 minutes ahead: not yet
    assert result["started"] == []
    result = run("2026-12-01T02:45:00Z", **env)  # 15 minutes ahead of the window
    assert result["started"] == ["patched"] and _db_status(account, "plain") == "stopped"
    text = account.reports()[-1]["content"]["description"]
    assert "maintenance window tue:03:00-tue:03:30 (UTC): running so that pending maintenance is applied" in text

    result = run("2026-12-01T03:10:00Z", **env)  # inside the window: stays running
    assert result["stopped"] == [] and _db_status(account, "patched") == "available"
    result = run("2026-12-01T03:30:00Z", **env)  # the window's end is a transition back to the schedule
    assert result["stopped"] == ["patched"]
    assert "maintenance window tue:03:00-tue:03:30 (UTC) ended" in account.reports()[-1]["content"]["description"]


# ------------------------------------------------------------------------------------ retain_running


def test_retain_running_keeps_an_instance_started_by_hand_before_the_start(account: Account, run: Run) -> None:
    schedules = {**SCHEDULES, "office-retain": {**SCHEDULES["office"], "retain_running": True}}
    env = {"SCHEDULES": json.dumps(schedules)}
    (kept,) = account.launch("office-retain", state="stopped")
    (plain,) = account.launch("office-retain", state="stopped")
    for instance in (kept, plain):
        account.set_tag(instance, "ScheduleState", "stopped@2026-11-30T17:05:00Z")
    account.starts_at = dt.datetime(2026, 12, 1, 5, 30, tzinfo=dt.UTC)
    account.ec2.start_instances(InstanceIds=[kept])  # by hand, Tuesday 06:30 local
    account.starts_at = dt.datetime(2026, 12, 1, 7, 5, tzinfo=dt.UTC)
    result = run(TUE_0805, **env)
    assert result["started"] == [plain]
    assert account.tags(kept)["ScheduleState"] == "running@2026-12-01T07:05:00Z;retained"
    result = run("2026-12-01T17:05:00Z", **env)  # 18:05: the period ends
    assert result["stopped"] == [plain]
    assert account.state(kept) == "running"
    result = run("2026-12-01T20:00:00Z", **env)
    assert result["stopped"] == [] and account.state(kept) == "running"


def test_retain_running_does_not_keep_a_start_of_its_own_whose_record_failed(account: Account, run: Run) -> None:
    """The scheduler starts the instance at 09:00 but cannot record it (throttled): the retried run finds it
    running with the old record. It started it itself (LaunchTime after the period's start): not retained."""
    from botocore.exceptions import ClientError

    schedules = {**SCHEDULES, "office-retain": {**SCHEDULES["office"], "retain_running": True}}
    env = {"SCHEDULES": json.dumps(schedules)}
    account.max_attempts = 1
    (instance,) = account.launch("office-retain", state="stopped",
                                 tags={"ScheduleState": "stopped@2026-11-30T17:05:00Z"})
    account.fail("CreateTags", lambda params: True, "RequestLimitExceeded")
    account.starts_at = dt.datetime(2026, 12, 1, 7, 5, tzinfo=dt.UTC)
    with pytest.raises(ClientError, match="RequestLimitExceeded"):
        run(TUE_0805, **env)
    assert account.state(instance) == "running"
    account.failures.clear()
    run(TUE_0805, **env)  # Lambda's retry of the same event
    assert account.tags(instance)["ScheduleState"] == "running@2026-12-01T07:05:00Z"  # not ;retained
    result = run("2026-12-01T17:05:00Z", **env)
    assert result["stopped"] == [instance]


# ------------------------------------------------------------------------------------ schedules parameter


def _parameter(value: str) -> None:
    boto3.client("ssm", REGION).put_parameter(Name="/opsauto/schedules", Value=value, Type="String", Overwrite=True)


def test_schedules_from_the_parameter_and_the_last_valid_value_on_a_bad_one(
        account: Account, run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    from ec2_scheduler import aws

    env = {"SCHEDULES_PARAMETER": "/opsauto/schedules"}
    _parameter(json.dumps({"late": {"timezone": "Europe/Berlin",
                                    "periods": [{"days": "mon-fri", "start": "10:00", "stop": "22:00"}]}}))
    (late,) = account.launch("late", state="stopped")
    (office,) = account.launch("office")
    account.set_tag(late, "ScheduleState", "stopped@2026-11-30T06:00:00Z")
    result = run("2026-11-30T09:05:00Z", **env)  # 10:05 local: the parameter's schedule starts it
    assert result["started"] == [late] and result["sourceProblems"] == {}

    _parameter('{"late": {"timezone": "Europe/Berlin", "periods": [{"days": "mon-fry", "start": "10:00"}]}}')
    aws.reset_parameters()  # past the provider's cache
    result = run(MON_2100, **env)  # 21:00 local: the last valid value still says running until 22:00
    problem = result["sourceProblems"]["parameter /opsauto/schedules"]
    assert "'fry' is not a day" in problem and "using the last valid value (read at 2026-11-30T09:05:00Z)" \
        in problem
    assert result["stopped"] == [office] and account.state(late) == "running"
    report = account.reports()[-1]
    assert report["content"]["title"].endswith("1 schedule sources not read")
    assert "Schedule sources not read" in report["content"]["description"]

    _parameter("not json")
    aws.reset_parameters()
    from ec2_scheduler import sources

    sources.reset()  # a cold start: no valid value read yet
    result = run("2026-11-30T21:05:00Z", **env)
    assert "no valid value read yet" in result["sourceProblems"]["parameter /opsauto/schedules"]
    assert result["problems"] == {late: "unknown schedule 'late'"}


def test_missing_parameter_is_reported_and_the_cdk_schedules_still_run(account: Account, run: Run) -> None:
    (office,) = account.launch("office")
    result = run(MON_2100, SCHEDULES_PARAMETER="/opsauto/missing")
    assert result["stopped"] == [office]
    assert "ParameterNotFound" in result["sourceProblems"]["parameter /opsauto/missing"]


# ------------------------------------------------------------------------------------ calendars


def test_ics_calendar_in_s3_skips_its_all_day_events(account: Account, run: Run) -> None:
    s3 = boto3.client("s3", REGION)
    s3.create_bucket(Bucket="ops-calendars")
    s3.put_object(Bucket="ops-calendars", Key="holidays.ics", Body=HOLIDAYS_ICS.encode())
    schedules = {**SCHEDULES, "office-cal": {**SCHEDULES["office"], "calendar": "s3://ops-calendars/holidays.ics"}}
    env = {"SCHEDULES": json.dumps(schedules)}
    (instance,) = account.launch("office-cal", state="stopped")
    account.set_tag(instance, "ScheduleState", "stopped@2026-11-30T17:05:00Z")

    result = run(TUE_0805, **env)  # Tuesday 1 December: the company day
    assert result["started"] == [] and account.state(instance) == "stopped"
    assert [(p["Bucket"], p["Key"]) for p in account.ops("GetObject")] == [("ops-calendars", "holidays.ics")]
    result = run("2026-12-02T07:05:00Z", **env)  # first Wednesday, but EXDATE: a working day
    assert result["started"] == [instance]
    run("2026-12-02T17:05:00Z", **env)
    result = run("2026-12-03T07:05:00Z", **env)  # a timed event is no skip date
    assert result["started"] == [instance]

    s3.delete_object(Bucket="ops-calendars", Key="holidays.ics")  # cannot be read: the last copy is used
    run("2026-12-03T17:05:00Z", **env)
    result = run("2027-01-06T07:05:00Z", **env)  # first Wednesday of January, from the RRULE
    assert result["started"] == [] and account.state(instance) == "stopped"
    assert "using the calendar read at 2026-12-03T07:05Z" in \
        result["sourceProblems"]["calendar s3://ops-calendars/holidays.ics"]


def test_unreadable_calendar_without_a_copy_acts_without_it_and_says_so(account: Account, run: Run) -> None:
    schedules = {**SCHEDULES, "office-cal": {**SCHEDULES["office"], "calendar": "s3://no-such-bucket/h.ics"}}
    (instance,) = account.launch("office-cal", state="stopped")
    account.set_tag(instance, "ScheduleState", "stopped@2026-11-30T17:05:00Z")
    result = run(TUE_0805, SCHEDULES=json.dumps(schedules))
    assert result["started"] == [instance]
    problem = result["sourceProblems"]["calendar s3://no-such-bucket/h.ics"]
    assert "NoSuchBucket" in problem and "act without the calendar" in problem


def _stub_ssm(monkeypatch: pytest.MonkeyPatch) -> Stubber:
    """An SSM client whose GetCalendarState answers come from Stubber (moto has no Change Calendar)."""
    from ec2_scheduler import aws

    ssm = boto3.client("ssm", REGION)
    stubber = Stubber(ssm)
    original = aws.client
    monkeypatch.setattr(aws, "client", lambda service, region=None: ssm if service == "ssm" else original(service,
                                                                                                        region))
    stubber.activate()
    return stubber


def test_change_calendar_closed_interval_stops_and_keeps_stopped(
        account: Account, run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    stubber = _stub_ssm(monkeypatch)
    schedules = {**SCHEDULES, "office-freeze": {**SCHEDULES["office"], "calendar": "ssm:release-freeze"}}
    env = {"SCHEDULES": json.dumps(schedules)}
    (instance,) = account.launch("office-freeze")
    account.set_tag(instance, "ScheduleState", "running@2026-12-01T07:05:00Z")
    # The run at Tuesday 13:05 local asks from Monday 00:00 local (Sunday 23:00 UTC): open until Tuesday 12:00
    # UTC, then closed until Wednesday 12:00 UTC, then open without further transitions.
    stubber.add_response("get_calendar_state", {"State": "OPEN", "AtTime": "2026-11-29T23:00:00Z",
                                                "NextTransitionTime": "2026-12-01T12:00:00Z"},
                         {"CalendarNames": ["release-freeze"], "AtTime": "2026-11-29T23:00:00Z"})
    stubber.add_response("get_calendar_state", {"State": "CLOSED", "AtTime": "2026-12-01T12:00:00Z",
                                                "NextTransitionTime": "2026-12-02T12:00:00Z"},
                         {"CalendarNames": ["release-freeze"], "AtTime": "2026-12-01T12:00:00Z"})
    stubber.add_response("get_calendar_state", {"State": "OPEN", "AtTime": "2026-12-02T12:00:00Z"},
                         {"CalendarNames": ["release-freeze"], "AtTime": "2026-12-02T12:00:00Z"})
    result = run("2026-12-01T12:05:00Z", **env)
    stubber.assert_no_pending_responses()
    assert result["stopped"] == [instance]
    assert "calendar ssm:release-freeze is CLOSED" in account.reports()[-1]["content"]["description"]

    stubber.add_client_error("get_calendar_state", "ThrottlingException", http_status_code=400)
    result = run("2026-12-02T07:05:00Z", **env)  # Wednesday 08:05: still closed (the last copy says so)
    assert result["started"] == [] and account.state(instance) == "stopped"
    assert "ThrottlingException" in result["sourceProblems"]["calendar ssm:release-freeze"]
