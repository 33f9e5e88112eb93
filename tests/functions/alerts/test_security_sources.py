"""Sources with their real severity (docs/alerts.md, "Severities"): every new fixture, shaped as the AWS
documentation's sample events, gets its dedicated formatter and the severity of the documented table."""

from __future__ import annotations

import copy

import pytest

from alerts.formatters import Options, alerts_from_event
from tests.functions.alerts.conftest import load


def _one(event: object) -> object:
    (alert,) = alerts_from_event(event, Options())
    return alert


def test_eventbridge_alarm_state_change_keeps_its_metric() -> None:
    alert = _one(load("eventbridge_alarm_state_change"))
    assert dict(alert.fields)["Metric"] == "AWS/ApiGateway Latency (p99) [ApiName=orders-api]"
    assert alert.severity == "critical" and alert.source == "cloudwatch-alarm"


def test_eventbridge_metric_math_alarm_keeps_its_expression() -> None:
    fields = dict(_one(load("eventbridge_alarm_metric_math")).fields)
    assert fields["Expression"] == "error rate % = 100 * errors / requests"
    assert fields["Metrics"] == ("errors: AWS/ApiGateway 5XXError (Sum) [ApiName=orders]; "
                                 "requests: AWS/ApiGateway Count (Sum) [ApiName=orders]")


@pytest.mark.parametrize(("name", "source", "severity", "title"), [
    ("eventbridge_securityhub_findings", "securityhub", "critical", "Security Hub: 2 findings"),
    ("eventbridge_inspector_finding", "inspector", "critical", "Inspector: CVE-2022-40897 - setuptools"),
    ("eventbridge_guardduty_malware_scan", "guardduty-malware", "critical",
     "GuardDuty malware scan: malware found in s3://amzn-s3-demo-bucket/uploads/invoice-2026-11.pdf.exe"),
    ("eventbridge_backup_job_failed", "backup", "critical",
     "AWS Backup: Backup Job FAILED for volume/vol-0a1b2c3d4e5f6a7b8"),
    ("eventbridge_config_noncompliant", "config", "warning",
     "AWS Config: AWS::EC2::Volume vol-0f1e2d3c4b5a69788 is NON_COMPLIANT with encrypted-volumes"),
    ("eventbridge_acm_expiring", "acm", "critical", "Certificate shop.example.com expires in 6 days"),
    ("eventbridge_trusted_advisor", "trustedadvisor", "warning", "Trusted Advisor: Exposed Access Keys (ERROR)"),
])
def test_dedicated_formatter_and_severity(name: str, source: str, severity: str, title: str) -> None:
    alert = _one(load(name))
    assert (alert.source, alert.severity, alert.title) == (source, severity, title)


def test_a_critical_security_hub_finding_is_not_graded_info() -> None:
    event = load("eventbridge_securityhub_findings")
    event["detail"]["findings"] = event["detail"]["findings"][1:]
    alert = _one(event)
    assert alert.severity == "critical" and alert.title.startswith("Security Hub: EC2.19")
    resolved = copy.deepcopy(event)
    resolved["detail"]["findings"][0]["Workflow"]["Status"] = "RESOLVED"
    assert _one(resolved).severity == "info"


@pytest.mark.parametrize(("label", "severity"), [("CRITICAL", "critical"), ("HIGH", "critical"),
                                                 ("MEDIUM", "warning"), ("LOW", "info"),
                                                 ("INFORMATIONAL", "info")])
def test_asff_and_inspector_labels(label: str, severity: str) -> None:
    hub = load("eventbridge_securityhub_findings")
    hub["detail"]["findings"] = hub["detail"]["findings"][:1]
    hub["detail"]["findings"][0]["Severity"]["Label"] = label
    inspector = load("eventbridge_inspector_finding")
    inspector["detail"]["severity"] = label
    assert _one(hub).severity == severity and _one(inspector).severity == severity


@pytest.mark.parametrize(("state", "message", "severity"), [
    ("FAILED", "", "critical"), ("ABORTED", "", "warning"), ("EXPIRED", "", "warning"),
    ("COMPLETED", "Windows VSS Backup attempt failed", "warning"), ("COMPLETED", "", "info"),
])
def test_backup_states(state: str, message: str, severity: str) -> None:
    event = load("eventbridge_backup_job_failed")
    event["detail"]["state"], event["detail"]["statusMessage"] = state, message
    assert _one(event).severity == severity


@pytest.mark.parametrize(("days", "severity"), [(3, "critical"), (7, "critical"), (8, "warning"), (30, "warning"),
                                                (31, "info")])
def test_acm_days(days: int, severity: str) -> None:
    event = load("eventbridge_acm_expiring")
    event["detail"]["DaysToExpiry"] = days
    assert _one(event).severity == severity


@pytest.mark.parametrize(("status", "severity"), [("THREATS_FOUND", "critical"), ("NO_THREATS_FOUND", "info"),
                                                  ("ACCESS_DENIED", "warning"), ("UNSUPPORTED", "warning")])
def test_malware_scan_results(status: str, severity: str) -> None:
    event = load("eventbridge_guardduty_malware_scan")
    event["detail"]["scanResultDetails"]["scanResultStatus"] = status
    assert _one(event).severity == severity


def test_config_back_to_compliant_is_info() -> None:
    event = load("eventbridge_config_noncompliant")
    event["detail"]["newEvaluationResult"]["complianceType"] = "COMPLIANT"
    assert _one(event).severity == "info"
