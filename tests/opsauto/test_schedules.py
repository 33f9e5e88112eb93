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
