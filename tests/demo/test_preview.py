"""make preview: report mode against the current credentials' account (moto here), changing nothing."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from opsauto import preview

ROOT = Path(__file__).resolve().parents[2]
SATURDAY_NOON = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def _context() -> dict:
    context = json.loads((ROOT / "cdk.json").read_text())["context"]
    context["automations"]["ec2_scheduler"].update(
        {"schedules": {"office": {"timezone": "Europe/Berlin",
                                  "periods": [{"days": "mon-fri", "start": "08:00", "stop": "18:00"}]}}}
    )
    return context


@mock_aws
def test_preview_prints_the_report_and_changes_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    ec2 = boto3.client("ec2", region_name="us-east-1")
    image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    instance = ec2.run_instances(
        ImageId=image, MinCount=1, MaxCount=1,
        TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "Schedule", "Value": "office"}]}],
    )["Instances"][0]["InstanceId"]

    lines: list[str] = []
    reports = preview.run_preview(
        "ec2_scheduler", preview.scheduled_event(SATURDAY_NOON), context=_context(), out=lines.append
    )

    assert len(reports) == 1
    report = reports[0]
    assert report["metadata"]["additionalContext"]["mode"] == "report"
    assert instance in json.dumps(report)
    assert lines[0].startswith("ec2_scheduler: preview in report mode")
    state = ec2.describe_instances(InstanceIds=[instance])["Reservations"][0]["Instances"][0]
    assert state["State"]["Name"] == "running"
    assert not any(tag["Key"] != "Schedule" for tag in state.get("Tags", [])), "preview wrote a tag"


@mock_aws
def test_write_calls_are_refused_before_they_are_sent() -> None:
    ec2 = boto3.client("ec2", region_name="us-east-1")
    refused: list[str] = []
    with preview.reads_only(refused.append) as calls, pytest.raises(preview.WriteBlocked):
        ec2.describe_instances()
        ec2.stop_instances(InstanceIds=["i-0123456789abcdef0"])
    assert calls == ["ec2:DescribeInstances", "ec2:StopInstances"]
    assert refused == ["preview: refused ec2:StopInstances (not a read)"]


def test_automation_without_report_mode_is_refused_clearly() -> None:
    with pytest.raises(preview.PreviewError, match="cannot be previewed"):
        preview.run_preview("image_resize")


def test_no_credentials_is_one_clear_line(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                                          tmp_path: Path) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN",
                 "AWS_PROFILE", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                 "AWS_WEB_IDENTITY_TOKEN_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    assert preview.main(["ec2_scheduler"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: no AWS credentials found")
    assert len(err.splitlines()) == 1


@mock_aws
def test_preview_sg_remediation_reports_the_open_port_and_revokes_nothing() -> None:
    ec2 = boto3.client("ec2", region_name="us-east-1")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    group = ec2.create_security_group(GroupName="web", Description="web", VpcId=vpc)["GroupId"]
    ec2.authorize_security_group_ingress(
        GroupId=group,
        IpPermissions=[{"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}],
    )
    lines: list[str] = []
    reports = preview.run_preview("sg_remediation", preview.scheduled_event(SATURDAY_NOON), out=lines.append)
    assert reports, lines
    assert all(r["metadata"]["additionalContext"]["mode"] == "report" for r in reports)
    assert group in json.dumps(reports)
    rules = ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [group]}])
    assert any(r.get("CidrIpv4") == "0.0.0.0/0" and r["FromPort"] == 22 for r in rules["SecurityGroupRules"])


@mock_aws
def test_preview_key_rotation_sweep_runs_read_only() -> None:
    iam = boto3.client("iam", region_name="us-east-1")
    iam.create_user(UserName="builder")
    iam.create_access_key(UserName="builder")
    lines: list[str] = []
    preview.run_preview("key_rotation", preview.scheduled_event(), out=lines.append)
    assert lines[0].startswith("key_rotation: preview in report mode")
    assert iam.list_access_keys(UserName="builder")["AccessKeyMetadata"][0]["Status"] == "Active"
