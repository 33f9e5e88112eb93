"""The normalized alert every source is turned into, and the console links it carries.

Pure: no boto3, no environment. Every formatter in ``alerts.formatters`` returns an :class:`Alert`; every
renderer in ``render`` takes one.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any
from urllib.parse import quote

from shared.reports import SEVERITIES

__all__ = ["SEVERITIES", "Alert", "Link", "Route", "at_least", "severity_rank", "with_origin"]

_RANK = {name: index for index, name in enumerate(SEVERITIES)}


def severity_rank(severity: str) -> int:
    """0 for info, 1 for warning, 2 for critical; unknown names count as info."""
    return _RANK.get(severity, 0)


def at_least(severity: str, minimum: str) -> bool:
    return severity_rank(severity) >= severity_rank(minimum)


@dataclass(frozen=True)
class Link:
    title: str
    url: str


@dataclass(frozen=True)
class Route:
    """What routing looks at (``alerts.routing``): the alert's source names, account, region and name."""

    sources: tuple[str, ...] = ()
    account: str = ""
    region: str = ""
    name: str = ""


@dataclass(frozen=True)
class Alert:
    """One message, independent of where it is sent.

    ``details`` is preformatted text (log lines) shown in a monospace block; ``fields`` are short
    name/value pairs; ``links`` point at the console page of the alarm, log group or resource.
    """

    title: str
    severity: str
    summary: str
    source: str
    time: str = ""
    resource: str = ""
    fields: tuple[tuple[str, str], ...] = ()
    links: tuple[Link, ...] = ()
    details: str = ""
    route: Route = field(default_factory=Route, compare=False)
    # Slack app mode threads by this key: "open" starts a thread (an ALARM), "resolve" answers in it and marks
    # the start resolved (its OK), "group" joins the thread of the same key (an automation run's reports).
    thread_key: str = ""
    thread_role: str = ""
    # Where it happened (``with_origin``): the account id, its name where Organizations can tell, the region.
    account: str = ""
    account_name: str = ""
    region: str = ""

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"severity must be one of {SEVERITIES}, not {self.severity!r}")

    @property
    def origin(self) -> str:
        """``"111122223333 (prod) eu-west-1"``; empty before ``with_origin``."""
        label = f"{self.account} ({self.account_name})" if self.account_name else self.account
        return " ".join(part for part in (label, self.region) if part)

    def to_dict(self) -> dict[str, Any]:
        """The generic-webhook form: plain JSON types only."""
        data = asdict(self)
        for internal in ("route", "thread_key", "thread_role", "account", "account_name", "region"):
            data.pop(internal)
        data["fields"] = [{"name": name, "value": value} for name, value in self.fields]
        data["links"] = [{"title": link.title, "url": link.url} for link in self.links]
        if self.account or self.region:
            data["origin"] = {"account": self.account, "accountName": self.account_name, "region": self.region}
        return {"version": "1", **data}


_ACCOUNT_ID = re.compile(r"^\d{12}$")


def with_origin(alert: Alert, own_account: str, name_of: Callable[[str], str | None]) -> Alert:
    """``alert`` naming its account (id, and name where ``name_of`` can tell) and region: in its ``Account`` and
    ``Region`` fields (added when the formatter gave none) and in ``origin``, which every renderer shows.

    The account is the one the message came from (``route.account``: a forwarded event's ``account``, an alarm's
    ``AWSAccountId``), else this function's own; the region is the route's (else the function's, see
    ``formatters.routes``). An ``Account`` field naming another account (a finding about a member account,
    reported by an administrator account) keeps that id, labelled with its name.
    """
    account = alert.route.account or own_account
    name = (name_of(account) or "") if account else ""

    def label(value: str) -> str:
        known = name if value == account else (name_of(value) or "") if _ACCOUNT_ID.fullmatch(value) else ""
        return f"{value} ({known})" if known else value

    fields = [(key, label(value) if key == "Account" else value) for key, value in alert.fields]
    if account and not any(key == "Account" for key, _ in fields):
        fields.append(("Account", label(account)))
    if alert.route.region and not any(key == "Region" for key, _ in fields):
        fields.append(("Region", alert.route.region))
    return replace(alert, fields=tuple(fields), account=account, account_name=name, region=alert.route.region)


# --- console links ------------------------------------------------------------------------------


def console_base(region: str) -> str:
    """The console host serving ``region`` (aws, aws-cn and aws-us-gov partitions)."""
    if region.startswith("cn-"):
        return "https://console.amazonaws.cn"
    if region.startswith("us-gov-"):
        return "https://console.amazonaws-us-gov.com"
    return f"https://{region}.console.aws.amazon.com"


def _console_escape(value: str) -> str:
    """CloudWatch console fragments double-encode names and write ``%`` as ``$``."""
    return quote(quote(value, safe=""), safe="").replace("%", "$")


def alarm_url(region: str, name: str) -> str:
    return f"{console_base(region)}/cloudwatch/home?region={region}#alarmsV2:alarm/{quote(name, safe='')}"


def log_group_url(region: str, group: str, stream: str | None = None) -> str:
    url = f"{console_base(region)}/cloudwatch/home?region={region}#logsV2:log-groups/log-group/{_console_escape(group)}"
    if stream:
        url += f"/log-events/{_console_escape(stream)}"
    return url


def ec2_instance_url(region: str, instance_id: str) -> str:
    return f"{console_base(region)}/ec2/home?region={region}#InstanceDetails:instanceId={quote(instance_id, safe='')}"


def guardduty_finding_url(region: str, finding_id: str) -> str:
    fid = quote(finding_id, safe="")
    return f"{console_base(region)}/guardduty/home?region={region}#/findings?macros=current&fId={fid}"


def health_event_url(event_arn: str) -> str:
    return f"https://health.aws.amazon.com/health/home#/account/event-log?eventID={quote(event_arn, safe='')}"


def codepipeline_execution_url(region: str, pipeline: str, execution_id: str) -> str:
    base = f"{console_base(region)}/codesuite/codepipeline/pipelines/{quote(pipeline, safe='')}"
    if execution_id:
        return f"{base}/executions/{quote(execution_id, safe='')}/timeline?region={region}"
    return f"{base}/view?region={region}"


def codebuild_build_url(region: str, project: str, build_id: str) -> str:
    return (
        f"{console_base(region)}/codesuite/codebuild/projects/{quote(project, safe='')}/build/"
        f"{quote(build_id, safe='')}/?region={region}"
    )


def region_of_arn(arn: str) -> str:
    """The region part of an ARN (``arn:aws:cloudwatch:us-east-1:123:alarm:x`` -> ``us-east-1``), or ""."""
    parts = arn.split(":")
    return parts[3] if len(parts) > 5 and parts[0] == "arn" else ""
