"""Security findings with their real severity: Security Hub (ASFF), Amazon Inspector, GuardDuty malware scans."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from alerts.alert import Alert, Link, console_base, severity_rank
from alerts.formatters.common import (
    Options,
    as_dict,
    as_list,
    as_text,
    aws_time,
    event_common,
    fields_of,
    joined,
)
from shared.text import truncate

# ASFF Severity.Label and Inspector's severity -> alert severity (docs/alerts.md, "Severities").
FINDING_SEVERITY = {"CRITICAL": "critical", "HIGH": "critical", "MEDIUM": "warning", "LOW": "info",
                    "INFORMATIONAL": "info", "UNTRIAGED": "info"}
# A finding that is closed, passed or archived is news, not an alarm.
CLOSED_WORKFLOW = ("RESOLVED", "SUPPRESSED")
MAX_FINDINGS_SHOWN = 10


def _worst(severities: list[str]) -> str:
    return max(severities, key=severity_rank) if severities else "info"


def _asff_severity(finding: Mapping[str, Any]) -> str:
    label = as_text(as_dict(finding.get("Severity")).get("Label")).upper()
    closed = (as_text(as_dict(finding.get("Workflow")).get("Status")).upper() in CLOSED_WORKFLOW
              or as_text(finding.get("RecordState")).upper() == "ARCHIVED"
              or as_text(as_dict(finding.get("Compliance")).get("Status")).upper() == "PASSED")
    return "info" if closed else FINDING_SEVERITY.get(label, "info")


def _worst_label(findings: list[dict[str, Any]]) -> str:
    labels = [as_text(as_dict(f.get("Severity")).get("Label")).upper() for f in findings]
    order = list(FINDING_SEVERITY)
    known = [label for label in labels if label in order]
    return min(known, key=order.index) if known else ""


def _asff_line(finding: Mapping[str, Any]) -> str:
    label = as_text(as_dict(finding.get("Severity")).get("Label")) or "?"
    resources = [as_text(as_dict(r).get("Id")) for r in as_list(finding.get("Resources"))]
    where = ", ".join(r for r in resources[:3] if r)
    return f"[{label}] {as_text(finding.get('Title'))}" + (f" — {where}" if where else "")


def securityhub_url(region: str) -> str:
    return f"{console_base(region)}/securityhub/home?region={region}#/findings"


def format_securityhub(event: Mapping[str, Any], options: Options) -> Alert:
    """``Security Hub Findings - Imported``: one message per finding batch, the worst severity of the batch."""
    region, account, time = event_common(event, options)
    findings = [as_dict(item) for item in as_list(as_dict(event.get("detail")).get("findings"))]
    if not findings:
        raise ValueError("no findings in the batch")
    severity = _worst([_asff_severity(finding) for finding in findings])
    first = findings[0]
    products = sorted({as_text(f.get("ProductName")) or as_text(f.get("ProductArn")).rsplit("/", 1)[-1]
                       for f in findings} - {""})
    lines = [_asff_line(finding) for finding in findings[:MAX_FINDINGS_SHOWN]]
    if len(findings) > MAX_FINDINGS_SHOWN:
        lines.append(f"… and {len(findings) - MAX_FINDINGS_SHOWN} more")
    title = (f"Security Hub: {as_text(first.get('Title'))}" if len(findings) == 1
             else f"Security Hub: {len(findings)} findings")
    recommendation = as_dict(as_dict(first.get("Remediation")).get("Recommendation"))
    links = [Link("Findings in Security Hub", securityhub_url(region))]
    if as_text(recommendation.get("Url")).startswith("https://"):
        links.append(Link("Remediation", as_text(recommendation["Url"])))
    return Alert(
        title=title,
        severity=severity,
        summary=joined([as_text(first.get("Description")) if len(findings) == 1 else "", "\n".join(lines)]),
        source="securityhub",
        time=aws_time(first.get("UpdatedAt")) or time,
        resource=as_text(as_dict((as_list(first.get("Resources")) or [{}])[0]).get("Id")),
        fields=fields_of(("Product", ", ".join(products)), ("Severity", _worst_label(findings)),
                         ("Findings", len(findings)), ("Compliance", as_dict(first.get("Compliance")).get("Status")),
                         ("Account", first.get("AwsAccountId") or account), ("Region", first.get("Region") or region)),
        links=tuple(links),
    )


def inspector_url(region: str, finding_arn: str) -> str:
    return (f"{console_base(region)}/inspector/v2/home?region={region}#/findings/all?"
            f"findingArn={quote(finding_arn, safe='')}")


def format_inspector(event: Mapping[str, Any], options: Options) -> Alert:
    """``Inspector2 Finding``: a package or network vulnerability on an instance, image or function."""
    region, account, time = event_common(event, options)
    detail = as_dict(event.get("detail"))
    label = as_text(detail.get("severity")).upper()
    closed = as_text(detail.get("status")).upper() == "CLOSED"
    vulnerability = as_dict(detail.get("packageVulnerabilityDetails"))
    packages = [f"{as_text(p.get('name'))} {as_text(p.get('version'))}"
                + (f" (fixed in {as_text(p.get('fixedInVersion'))})" if p.get("fixedInVersion") else "")
                for p in map(as_dict, as_list(vulnerability.get("vulnerablePackages")))]
    resources = [as_text(as_dict(r).get("id")) for r in as_list(detail.get("resources"))]
    arn = as_text(detail.get("findingArn"))
    return Alert(
        title=f"Inspector: {as_text(detail.get('title'))}" + (" (closed)" if closed else ""),
        severity="info" if closed else FINDING_SEVERITY.get(label, "info"),
        summary=truncate(as_text(detail.get("description")), 2_000),
        source="inspector",
        time=time,
        resource=resources[0] if resources else "",
        fields=fields_of(("Severity", label), ("Score", detail.get("inspectorScore")), ("Type", detail.get("type")),
                         ("Vulnerability", vulnerability.get("vulnerabilityId")), ("Packages", "; ".join(packages)),
                         ("Fix available", detail.get("fixAvailable")), ("Exploit available",
                                                                          detail.get("exploitAvailable")),
                         ("Resources", ", ".join(resources[:5])),
                         ("Account", detail.get("awsAccountId") or account), ("Region", region)),
        links=(Link("Finding in Inspector", inspector_url(region, arn)),) if arn else (),
    )


MALWARE_SEVERITY = {"THREATS_FOUND": "critical", "NO_THREATS_FOUND": "info"}


def format_malware_scan(event: Mapping[str, Any], options: Options) -> Alert:
    """``GuardDuty Malware Protection Object Scan Result``: threats found are critical, a scan that could not
    run (failed, skipped, access denied, unsupported) a warning."""
    region, account, time = event_common(event, options)
    detail = as_dict(event.get("detail"))
    obj = as_dict(detail.get("s3ObjectDetails"))
    result = as_dict(detail.get("scanResultDetails"))
    status = as_text(result.get("scanResultStatus")) or as_text(detail.get("scanStatus"))
    threats = [as_text(as_dict(t).get("name")) for t in as_list(result.get("threats"))]
    where = f"s3://{as_text(obj.get('bucketName'))}/{as_text(obj.get('objectKey'))}"
    verdict = {"THREATS_FOUND": "malware found", "NO_THREATS_FOUND": "no threats found"}.get(status, status.lower())
    return Alert(
        title=f"GuardDuty malware scan: {verdict} in {where}",
        severity=MALWARE_SEVERITY.get(status, "warning"),
        summary=f"Scan {as_text(detail.get('scanStatus')).lower() or 'result'}: {status}."
        + (f" Threats: {', '.join(threats)}." if threats else ""),
        source="guardduty-malware",
        time=time,
        resource=where,
        fields=fields_of(("Object", where), ("Version", obj.get("versionId")), ("Result", status),
                         ("Threats", ", ".join(threats)), ("Scan", detail.get("scanStatus")),
                         ("Account", account), ("Region", region)),
        links=(Link("Object in S3", f"{console_base(region)}/s3/object/{quote(as_text(obj.get('bucketName')))}"
                    f"?region={region}&prefix={quote(as_text(obj.get('objectKey')), safe='')}"),),
    )


