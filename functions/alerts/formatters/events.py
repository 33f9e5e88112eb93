"""EventBridge events of AWS services: one pure formatter per (source, detail-type), and the generic one."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from alerts.alert import (
    Alert,
    Link,
    codebuild_build_url,
    codepipeline_execution_url,
    ec2_instance_url,
    guardduty_finding_url,
    health_event_url,
    log_group_url,
)
from alerts.formatters.common import (
    MAX_DETAILS_CHARS,
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

EC2_SEVERITY = {"stopping": "warning", "stopped": "warning", "shutting-down": "warning", "terminated": "critical"}
HEALTH_STATUS_CLOSED = ("closed", "resolved")


def format_ec2_state(event: Mapping[str, Any], options: Options) -> Alert:
    detail = as_dict(event.get("detail"))
    region, account, time = event_common(event, options)
    instance = as_text(detail["instance-id"])
    state = as_text(detail.get("state"))
    return Alert(
        title=f"EC2 instance {instance} is {state}",
        severity=EC2_SEVERITY.get(state, "info"),
        summary=f"Instance {instance} in {region} changed state to {state}.",
        source="ec2",
        time=time,
        resource=instance,
        fields=fields_of(("Instance", instance), ("State", state), ("Account", account), ("Region", region)),
        links=(Link("Instance in console", ec2_instance_url(region, instance)),),
    )


def guardduty_severity(score: float) -> str:
    """GuardDuty's bands: 7.0-8.9 High (and 9.0+ Critical) -> critical, 4.0-6.9 Medium -> warning, Low -> info."""
    if score >= 7:
        return "critical"
    if score >= 4:
        return "warning"
    return "info"


def _guardduty_resource(resource: Mapping[str, Any]) -> str:
    instance = as_dict(resource.get("instanceDetails")).get("instanceId")
    if instance:
        return as_text(instance)
    key = as_dict(resource.get("accessKeyDetails"))
    if key.get("userName") or key.get("accessKeyId"):
        return as_text(key.get("userName") or key.get("accessKeyId"))
    buckets = [as_text(as_dict(b).get("name")) for b in as_list(resource.get("s3BucketDetails"))]
    return ", ".join(b for b in buckets if b) or as_text(resource.get("resourceType"))


def format_guardduty(event: Mapping[str, Any], options: Options) -> Alert:
    detail = as_dict(event.get("detail"))
    region, account, time = event_common(event, options)
    region = as_text(detail.get("region")) or region
    score = float(detail.get("severity") or 0)
    service = as_dict(detail.get("service"))
    resource = _guardduty_resource(as_dict(detail.get("resource")))
    finding_id = as_text(detail.get("id"))
    return Alert(
        title=f"GuardDuty: {as_text(detail.get('title')) or as_text(detail.get('type'))}",
        severity=guardduty_severity(score),
        summary=as_text(detail.get("description")),
        source="guardduty",
        time=aws_time(detail.get("updatedAt")) or time,
        resource=resource,
        fields=fields_of(("Finding type", detail.get("type")), ("Severity", f"{score:g}"), ("Resource", resource),
                       ("Count", service.get("count")), ("Account", detail.get("accountId") or account),
                       ("Region", region)),
        links=(Link("Finding in console", guardduty_finding_url(region, finding_id)),) if finding_id else (),
    )


def format_health(event: Mapping[str, Any], options: Options) -> Alert:
    detail = as_dict(event.get("detail"))
    region, account, time = event_common(event, options)
    category = as_text(detail.get("eventTypeCategory"))
    status = as_text(detail.get("statusCode")).lower()
    if status in HEALTH_STATUS_CLOSED:
        severity = "info"
    elif category == "issue":
        severity = "critical"
    elif category == "scheduledChange":
        severity = "warning"
    else:
        severity = "info"
    descriptions = [as_dict(item) for item in as_list(detail.get("eventDescription"))]
    english = next((d for d in descriptions if as_text(d.get("language")).startswith("en")), None)
    description = as_text((english or (descriptions[0] if descriptions else {})).get("latestDescription"))
    entities = [as_text(as_dict(item).get("entityValue")) for item in as_list(detail.get("affectedEntities"))]
    entities = [entity for entity in entities if entity] or [as_text(r) for r in as_list(event.get("resources"))]
    arn = as_text(detail.get("eventArn"))
    service = as_text(detail.get("service"))
    code = as_text(detail.get("eventTypeCode"))
    return Alert(
        title=f"AWS Health: {service} {code}".strip() + (" (resolved)" if status in HEALTH_STATUS_CLOSED else ""),
        severity=severity,
        summary=truncate(description, 2_500),
        source="health",
        time=aws_time(detail.get("startTime")) or time,
        resource=entities[0] if len(entities) == 1 else "",
        fields=fields_of(("Service", service), ("Category", category), ("Status", detail.get("statusCode")),
                       ("Start", aws_time(detail.get("startTime"))), ("End", aws_time(detail.get("endTime"))),
                       ("Affected", ", ".join(entities[:10]) + (f" (+{len(entities) - 10} more)"
                                                                if len(entities) > 10 else "")),
                       ("Account", account), ("Region", as_text(detail.get("eventRegion")) or region)),
        links=(Link("Event in AWS Health", health_event_url(arn)),) if arn else (),
    )


CODEPIPELINE_BAD = ("FAILED",)
CODEPIPELINE_WARN = ("STOPPED", "SUPERSEDED", "CANCELED")


def format_codepipeline(event: Mapping[str, Any], options: Options) -> Alert:
    detail = as_dict(event.get("detail"))
    region, account, time = event_common(event, options)
    pipeline = as_text(detail["pipeline"])
    state = as_text(detail.get("state"))
    execution = as_text(detail.get("execution-id"))
    where = pipeline
    if detail.get("stage"):
        where += f" / {as_text(detail['stage'])}"
    if detail.get("action"):
        where += f" / {as_text(detail['action'])}"
    severity = "critical" if state in CODEPIPELINE_BAD else "warning" if state in CODEPIPELINE_WARN else "info"
    summary_parts = [f"{as_text(event.get('detail-type'))}: {where} is {state}."]
    # Action-level events carry the action's own failure text in execution-result.
    failure = as_text(as_dict(detail.get("execution-result")).get("external-execution-summary"))
    if failure:
        summary_parts.append(failure)
    return Alert(
        title=f"CodePipeline {where}: {state}",
        severity=severity,
        summary=joined(summary_parts),
        source="codepipeline",
        time=time,
        resource=pipeline,
        fields=fields_of(("Pipeline", pipeline), ("Stage", detail.get("stage")), ("Action", detail.get("action")),
                       ("State", state), ("Execution", execution), ("Account", account), ("Region", region)),
        links=(Link("Execution in console", codepipeline_execution_url(region, pipeline, execution)),),
    )


CODEBUILD_BAD = ("FAILED", "FAULT", "TIMED_OUT")


def format_codebuild(event: Mapping[str, Any], options: Options) -> Alert:
    detail = as_dict(event.get("detail"))
    region, account, time = event_common(event, options)
    project = as_text(detail["project-name"])
    status = as_text(detail.get("build-status"))
    build_arn = as_text(detail.get("build-id"))
    build_id = build_arn.rsplit("/", 1)[-1]
    info = as_dict(detail.get("additional-information"))
    logs = as_dict(info.get("logs"))
    phase = as_text(detail.get("current-phase"))
    context = as_text(detail.get("current-phase-context")).strip("[]")
    failed_phases = [
        f"{as_text(as_dict(p).get('phase-type'))}: {as_text(as_dict(p).get('phase-status'))}"
        + (f" ({'; '.join(as_text(c) for c in as_list(as_dict(p).get('phase-context')) if as_text(c))})"
           if any(as_text(c) for c in as_list(as_dict(p).get("phase-context"))) else "")
        for p in as_list(info.get("phases"))
        if as_text(as_dict(p).get("phase-status")) not in ("", "SUCCEEDED")
    ]
    links = [Link("Build in console", codebuild_build_url(region, project, build_id))]
    if logs.get("group-name") and logs.get("stream-name"):
        group, stream = as_text(logs["group-name"]), as_text(logs["stream-name"])
        links.append(Link("Build logs", log_group_url(region, group, stream)))
    return Alert(
        title=f"CodeBuild {project}: {status}",
        severity="critical" if status in CODEBUILD_BAD else "warning" if status == "STOPPED" else "info",
        summary=joined([f"Build {build_id} of {project} is {status}" + (f" in phase {phase}." if phase else "."),
                       "\n".join(failed_phases), context]),
        source="codebuild",
        time=time,
        resource=build_arn or project,
        fields=fields_of(("Project", project), ("Status", status), ("Phase", phase),
                       ("Initiator", info.get("initiator")), ("Source version", info.get("source-version")),
                       ("Account", account), ("Region", region)),
        links=tuple(links),
    )


def _flatten(value: Any, prefix: str = "") -> list[tuple[str, Any]]:
    if isinstance(value, dict):
        found: list[tuple[str, Any]] = []
        for key, item in value.items():
            found.extend(_flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return found
    if isinstance(value, list):
        if all(not isinstance(item, dict | list) for item in value):
            return [(prefix, ", ".join(as_text(item) for item in value))] if value else []
        return [(prefix, value)]
    return [(prefix, value)]


GENERIC_FIELDS = 8


def format_generic_event(event: Mapping[str, Any], options: Options) -> Alert:
    """Any EventBridge event: its type, source, the first scalar fields of ``detail`` and the JSON."""
    region, account, time = event_common(event, options)
    detail = event.get("detail")
    scalars = [(name, value) for name, value in _flatten(detail) if not isinstance(value, dict | list)]
    resources = [as_text(item) for item in as_list(event.get("resources"))]
    return Alert(
        title=as_text(event.get("detail-type")) or "AWS event",
        severity="info",
        summary=f"Event from {as_text(event.get('source')) or 'an unknown source'}"
        + (f" in account {account}, {region}." if account else "."),
        source=f"event:{as_text(event.get('source'))}",
        time=time,
        resource=resources[0] if resources else "",
        fields=fields_of(*scalars[:GENERIC_FIELDS], ("Resources", ", ".join(resources[:5]))),
        details=truncate(json.dumps(detail, indent=2, sort_keys=True, default=str), MAX_DETAILS_CHARS),
    )
