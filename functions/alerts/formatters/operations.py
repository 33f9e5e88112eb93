"""Operations events with their real severity: AWS Backup jobs, AWS Config compliance, ACM certificate expiry,
Trusted Advisor checks."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from alerts.alert import Alert, Link, console_base
from alerts.formatters.common import Options, as_dict, as_text, aws_time, event_common, fields_of, joined

# Backup, copy and restore job states (docs/alerts.md, "Severities").
BACKUP_SEVERITY = {"FAILED": "critical", "ABORTED": "warning", "EXPIRED": "warning", "PARTIAL": "warning",
                   "COMPLETED": "info", "CREATED": "info", "RUNNING": "info", "PENDING": "info"}
CONFIG_SEVERITY = {"NON_COMPLIANT": "warning", "COMPLIANT": "info", "NOT_APPLICABLE": "info",
                   "INSUFFICIENT_DATA": "info"}
ACM_CRITICAL_DAYS = 7
ACM_WARNING_DAYS = 30
TRUSTED_ADVISOR_SEVERITY = {"ERROR": "warning", "WARN": "info", "OK": "info"}


def format_backup(event: Mapping[str, Any], options: Options) -> Alert:
    """``Backup|Copy|Restore Job State Change``. A COMPLETED job with a status message is "completed with
    issues" (a warning), as the AWS Backup console shows it."""
    region, account, time = event_common(event, options)
    detail = as_dict(event.get("detail"))
    state = as_text(detail.get("state") or detail.get("status")).upper()
    message = as_text(detail.get("statusMessage")).strip().strip('"')
    severity = BACKUP_SEVERITY.get(state, "warning")
    if state == "COMPLETED" and message:
        severity = "warning"
    kind = as_text(event.get("detail-type")).removesuffix(" State Change") or "Backup job"
    resource = as_text(detail.get("resourceArn"))
    job = as_text(detail.get("backupJobId") or detail.get("copyJobId") or detail.get("restoreJobId"))
    return Alert(
        title=f"AWS Backup: {kind} {state}" + (f" for {resource.rsplit(':', 1)[-1]}" if resource else ""),
        severity=severity,
        summary=joined([f"{kind} {job} of {as_text(detail.get('resourceType'))} {resource} is {state}.", message]),
        source="backup",
        time=time,
        resource=resource,
        fields=fields_of(("State", state), ("Resource type", detail.get("resourceType")),
                         ("Vault", detail.get("backupVaultName")), ("Job", job),
                         ("Created", aws_time(detail.get("creationDate"))), ("Account", account), ("Region", region)),
        links=(Link("Jobs in AWS Backup", f"{console_base(region)}/backup/home?region={region}#/jobs"),),
    )


def format_config(event: Mapping[str, Any], options: Options) -> Alert:
    """``Config Rules Compliance Change``: NON_COMPLIANT is a warning, back to COMPLIANT is info."""
    region, account, time = event_common(event, options)
    detail = as_dict(event.get("detail"))
    new = as_dict(detail.get("newEvaluationResult"))
    old = as_dict(detail.get("oldEvaluationResult"))
    compliance = as_text(new.get("complianceType"))
    rule = as_text(detail.get("configRuleName"))
    resource = as_text(detail.get("resourceId"))
    kind = as_text(detail.get("resourceType"))
    region = as_text(detail.get("awsRegion")) or region
    return Alert(
        title=f"AWS Config: {kind} {resource} is {compliance} with {rule}",
        severity=CONFIG_SEVERITY.get(compliance, "info"),
        summary=joined([f"{compliance} (was {as_text(old.get('complianceType')) or 'not evaluated'}).",
                        as_text(new.get("annotation"))]),
        source="config",
        time=aws_time(new.get("resultRecordedTime")) or time,
        resource=resource,
        fields=fields_of(("Rule", rule), ("Resource", f"{kind} {resource}"), ("Compliance", compliance),
                         ("Previously", old.get("complianceType")),
                         ("Account", detail.get("awsAccountId") or account), ("Region", region)),
        links=(Link("Rule in AWS Config", f"{console_base(region)}/config/home?region={region}#/rules/details?"
                    f"configRuleName={quote(rule, safe='')}"),),
    )


def acm_severity(days: int | None) -> str:
    if days is None or days <= ACM_CRITICAL_DAYS:
        return "critical"
    return "warning" if days <= ACM_WARNING_DAYS else "info"


def format_acm(event: Mapping[str, Any], options: Options) -> Alert:
    """``ACM Certificate Approaching Expiration`` (daily, from 45 days before) and ``ACM Certificate Expired``."""
    region, account, time = event_common(event, options)
    detail = as_dict(event.get("detail"))
    arn = next(iter(event.get("resources") or []), "")
    name = as_text(detail.get("CommonName")) or as_text(arn).rsplit("/", 1)[-1]
    expired = as_text(event.get("detail-type")) == "ACM Certificate Expired"
    days = None if expired else int(detail["DaysToExpiry"])
    when = "has expired" if days is None else f"expires in {days} day{'s' if days != 1 else ''}"
    return Alert(
        title=f"Certificate {name} {when}",
        severity=acm_severity(days),
        summary=f"The ACM certificate for {name} {when}. ACM renews the certificates it issued when their domain "
        "validation still works; an imported certificate must be reimported.",
        source="acm",
        time=time,
        resource=as_text(arn),
        fields=fields_of(("Domain", name), ("Days to expiry", days), ("Account", account), ("Region", region)),
        links=(Link("Certificate in ACM", f"{console_base(region)}/acm/home?region={region}#/certificates/"
                    f"{quote(as_text(arn).rsplit('/', 1)[-1], safe='')}"),),
    )


def format_trusted_advisor(event: Mapping[str, Any], options: Options) -> Alert:
    """``Trusted Advisor Check Item Refresh Notification``: ERROR (red, action recommended) is a warning."""
    _, account, time = event_common(event, options)
    detail = as_dict(event.get("detail"))
    check = as_text(detail.get("check-name"))
    status = as_text(detail.get("status")).upper()
    item = as_dict(detail.get("check-item-detail"))
    return Alert(
        title=f"Trusted Advisor: {check} ({status})",
        severity=TRUSTED_ADVISOR_SEVERITY.get(status, "info"),
        summary=f"The check {check} reports {status} for an item"
        + (f" ({as_text(detail.get('resource_id'))})." if detail.get("resource_id") else "."),
        source="trustedadvisor",
        time=time,
        resource=as_text(detail.get("resource_id")),
        fields=fields_of(("Check", check), ("Status", status), *list(item.items())[:8], ("Account", account)),
        links=(Link("Trusted Advisor", "https://console.aws.amazon.com/trustedadvisor/home#/dashboard"),),
    )
