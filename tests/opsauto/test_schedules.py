"""``opsauto schedules``: validate, describe and usage, with the function's own schedule parser."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from opsauto.cli import main

SCHEDULES = {"office": {"timezone": "Europe/Berlin",
                        "periods": [{"days": "mon-fri", "start": "08:00", "stop": "18:00"}]},
             "broken": {"timezone": "Mars/Olympus", "periods": [{"days": "mon-fri", "start": "08:00"}]}}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    context = {"project": {}, "automations": {"ec2_scheduler": {"schedules": {"office": SCHEDULES["office"]}}}}
    (tmp_path / "cdk.json").write_text(json.dumps({"app": "true", "context": context}))
    (tmp_path / "schedules.json").write_text(json.dumps(SCHEDULES))
    return tmp_path


def test_validate_names_each_bad_schedule(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["schedules", "validate", str(project / "schedules.json")])
    out = capsys.readouterr().out
    assert code == 1 and "ok    office" in out and "error broken:" in out and "Mars/Olympus" in out


def test_describe_gives_local_and_utc_times_across_the_dst_change(project: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    # 2026-03-27 is a Friday; Berlin moves to CEST on Sunday 29 March
    code = main(["--project-dir", str(project), "schedules", "describe", "office", "--from", "2026-03-27",
                 "--days", "4"])
    out = capsys.readouterr().out
    assert code == 0
    assert "Fri 2026-03-27 08:00 CET" in out and "2026-03-27T07:00Z" in out
    assert "Mon 2026-03-30 08:00 CEST" in out and "2026-03-30T06:00Z" in out
    assert "2026-03-28" not in out  # the weekend has no transition


@mock_aws
def test_usage_lists_tagged_resources_and_unknown_schedules(project: Path, capsys: pytest.CaptureFixture[str],
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    ec2 = boto3.client("ec2", region_name="us-east-1")
    for schedule in ("office", "nope"):
        ec2.run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1, TagSpecifications=[
            {"ResourceType": "instance", "Tags": [{"Key": "Schedule", "Value": schedule}]}])
    ec2.run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1)  # untagged: not listed
    code = main(["--region", "us-east-1", "--project-dir", str(project), "schedules", "usage", "--json"])
    rows = json.loads(capsys.readouterr().out)
    assert code == 0
    assert sorted((r["schedule"], r["note"]) for r in rows) == [("nope", "no such schedule: left alone"),
                                                                ("office", "")]


@mock_aws
def test_validate_and_describe_the_schedules_parameter(project: Path, capsys: pytest.CaptureFixture[str],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    ssm = boto3.client("ssm", region_name="us-east-1")
    ssm.put_parameter(Name="/opsauto/schedules", Type="String", Value=json.dumps(
        {"month-end": {"timezone": "Europe/Berlin", "periods": [{"monthdays": "L", "start": "18:00", "stop": "23:00"}],
                       "skip_dates": ["*-12-31"]}}))
    ssm.put_parameter(Name="/opsauto/bad", Type="String", Value=json.dumps(SCHEDULES))
    assert main(["--region", "us-east-1", "schedules", "validate", "--parameter", "/opsauto/schedules"]) == 0
    assert "ok    month-end" in capsys.readouterr().out
    assert main(["--region", "us-east-1", "schedules", "validate", "--parameter", "/opsauto/bad"]) == 1
    assert "error broken:" in capsys.readouterr().out

    code = main(["--region", "us-east-1", "--project-dir", str(project), "schedules", "describe", "month-end",
                 "--parameter", "/opsauto/schedules", "--from", "2026-11-01", "--days", "61"])
    out = capsys.readouterr().out
    assert code == 0
    assert "Mon 2026-11-30 18:00 CET" in out and "2026-11-30T17:00Z" in out
    assert "2026-12-31" in out and "skip date 2026-12-31" in out  # the last day of December is a yearly skip date
    assert "Thu 2026-12-31 18:00" not in out


@mock_aws
def test_describe_reads_the_schedules_calendar(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="ops-calendars")
    s3.put_object(Bucket="ops-calendars", Key="h.ics", Body=(
        b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\nBEGIN:VEVENT\r\nUID:a@example.com\r\n"
        b"DTSTAMP:20260101T000000Z\r\nDTSTART;VALUE=DATE:20261201\r\nSUMMARY:Company day\r\nEND:VEVENT\r\n"
        b"END:VCALENDAR\r\n"))
    schedules = {"office": {**SCHEDULES["office"], "calendar": "s3://ops-calendars/h.ics"}}
    (tmp_path / "s.json").write_text(json.dumps(schedules))
    code = main(["--region", "us-east-1", "schedules", "describe", "office", "--file", str(tmp_path / "s.json"),
                 "--from", "2026-11-30", "--days", "3"])
    out = capsys.readouterr().out
    assert code == 0 and "calendar s3://ops-calendars/h.ics lists 2026-12-01" in out
    assert "Tue 2026-12-01 08:00" not in out and "Wed 2026-12-02 08:00 CET" in out
    main(["--region", "us-east-1", "schedules", "describe", "office", "--file", str(tmp_path / "s.json"),
          "--from", "2026-11-30", "--days", "3", "--no-calendar"])
    assert "Tue 2026-12-01 08:00 CET" in capsys.readouterr().out


@mock_aws
def test_usage_lists_auto_scaling_groups(project: Path, capsys: pytest.CaptureFixture[str],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    ec2 = boto3.client("ec2", region_name="us-east-1")
    template = ec2.create_launch_template(LaunchTemplateName="lt", LaunchTemplateData={
        "ImageId": "ami-12c6146b", "InstanceType": "t3.micro"})["LaunchTemplate"]
    boto3.client("autoscaling", region_name="us-east-1").create_auto_scaling_group(
        AutoScalingGroupName="web", MinSize=0, MaxSize=2, DesiredCapacity=0,
        VPCZoneIdentifier=ec2.describe_subnets()["Subnets"][0]["SubnetId"],
        LaunchTemplate={"LaunchTemplateId": template["LaunchTemplateId"]},
        Tags=[{"Key": "Schedule", "Value": "office", "PropagateAtLaunch": True}])
    assert main(["--region", "us-east-1", "--project-dir", str(project), "schedules", "usage", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["kind"], r["id"], r["state"], r["schedule"]) for r in rows] == [
        ("asg", "web", "min 0, desired 0, max 2", "office")]
