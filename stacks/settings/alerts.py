"""Settings of the `alerts` automation (cdk.json: context.automations.alerts)."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from alerts.config import (
    DELIVERY_ATTEMPTS,
    HTTP_TIMEOUT_SECONDS,
    MAX_LOG_LINES,
    parse_http_timeout,
    parse_max_log_lines,
    parse_severity,
)
from stacks.settings.base import AutomationSettings, StrictModel

# CloudWatch Logs log group names: 1-512 characters of letters, digits, '_', '-', '/', '.', '#'.
_LOG_GROUP_RE = re.compile(r"^[\w\-/.#]{1,512}$")
_SNS_ARN_RE = re.compile(r"^arn:aws[\w-]*:sns:[a-z0-9-]+:\d{12}:[\w-]{1,256}(\.fifo)?$")
# Top-level keys of an EventBridge event pattern.
_PATTERN_KEYS = {"version", "id", "detail-type", "source", "account", "time", "region", "resources", "detail"}
# Error-level lines in plain-text logs; for JSON logs use e.g. '{ $.level = "ERROR" || $.level = "CRITICAL" }'.
DEFAULT_FILTER_PATTERN = "?ERROR ?Error ?error ?CRITICAL ?Critical ?FATAL ?Fatal ?Exception ?Traceback"
EC2_STATES = ("pending", "running", "stopping", "stopped", "shutting-down", "terminated")
Severity = Literal["info", "warning", "critical"]
FindingLabel = Literal["LOW", "MEDIUM", "HIGH", "CRITICAL"]
FINDING_LABELS = ("INFORMATIONAL", "LOW", "MEDIUM", "HIGH", "CRITICAL")
Ec2State = Literal["pending", "running", "stopping", "stopped", "shutting-down", "terminated"]


def _default_states() -> list[Ec2State]:
    return ["stopped", "terminated"]


class LogSubscription(StrictModel):
    """One CloudWatch Logs subscription filter that sends matching lines to the function."""

    log_group_name: str = Field(description="Name of an existing log group, e.g. /aws/lambda/my-function.")
    filter_pattern: str = Field(
        DEFAULT_FILTER_PATTERN,
        description="CloudWatch Logs filter pattern; the default matches error-level words in plain-text lines. "
        "For JSON logs: '{ $.level = \"ERROR\" || $.level = \"CRITICAL\" }'.",
    )

    @field_validator("log_group_name")
    @classmethod
    def _group(cls, value: str) -> str:
        if not _LOG_GROUP_RE.fullmatch(value):
            raise ValueError(
                f"log group name {value!r} must be 1-512 characters of letters, digits, '_', '-', '/', '.', '#'"
            )
        return value

    @field_validator("filter_pattern")
    @classmethod
    def _pattern(cls, value: str) -> str:
        if len(value) > 1024:
            raise ValueError("a filter pattern is at most 1024 characters")
        return value


class EventRules(StrictModel):
    """EventBridge rules that send AWS events to the function; each one can be switched off."""

    ec2_state_changes: bool = Field(False, description="EC2 instance state changes (states in ec2_states).")
    ec2_states: list[Ec2State] = Field(
        default_factory=_default_states,
        description="EC2 states that raise an alert when ec2_state_changes is on.",
    )
    guardduty: float | None = Field(
        None,
        description="GuardDuty findings with at least this severity (0-10; 4 = Medium, 7 = High); null = off.",
    )
    health: bool = Field(True, description="AWS Health events for this account (issues, scheduled changes).")
    codepipeline_failures: bool = Field(True, description="CodePipeline pipeline executions that FAILED.")
    codebuild_failures: bool = Field(True, description="CodeBuild builds that FAILED, FAULTed or TIMED_OUT.")
    alarm_state_changes: bool = Field(
        False, description="Every CloudWatch alarm state change of the account (EventBridge), with its metric or "
        "expression; leave off when the alarms already notify a subscribed topic.")
    security_hub: FindingLabel | None = Field(
        None, description="Active Security Hub findings (ASFF) with at least this Severity.Label "
        "(LOW, MEDIUM, HIGH, CRITICAL); null = off.")
    inspector: FindingLabel | None = Field(
        None, description="Active Amazon Inspector findings with at least this severity; null = off.")
    guardduty_malware_scans: bool = Field(
        False, description="GuardDuty Malware Protection for S3 scan results other than NO_THREATS_FOUND.")
    backup_failures: bool = Field(False, description="AWS Backup and copy jobs that FAILED, were ABORTED or EXPIRED.")
    config_noncompliant: bool = Field(False, description="AWS Config rule evaluations that became NON_COMPLIANT.")
    acm_expiry: bool = Field(False, description="ACM certificates approaching expiration (daily from 45 days "
                             "before) and expired.")
    trusted_advisor: bool = Field(False, description="Trusted Advisor check items turning ERROR or WARN "
                                  "(Trusted Advisor sends its events in us-east-1 only).")

    @field_validator("guardduty")
    @classmethod
    def _guardduty(cls, value: float | None) -> float | None:
        if value is not None and not 0 <= value <= 10:
            raise ValueError("GuardDuty severity is a number from 0 to 10 (4 = Medium, 7 = High), or null for off")
        return value

    @field_validator("ec2_states")
    @classmethod
    def _states(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError(f"list at least one state ({', '.join(EC2_STATES)})")
        return list(dict.fromkeys(value))


def _check_pattern(value: Any, path: str) -> None:
    """EventBridge's rule: every leaf of a pattern is a list of values or matchers."""
    if isinstance(value, dict):
        if not value:
            raise ValueError(f"{path} is an empty object")
        for key, item in value.items():
            _check_pattern(item, f"{path}.{key}")
    elif isinstance(value, list):
        if not value:
            raise ValueError(f"{path} is an empty list (it would match nothing)")
    else:
        raise ValueError(f"{path} must be a list of values (EventBridge patterns match against arrays), "
                         f"got {value!r}")


class AlertsSettings(AutomationSettings):
    """CloudWatch alarms, log errors, AWS events and action reports -> Slack, Teams and webhooks."""

    min_severity: Severity = Field(
        "info", description="Alerts below this severity are not sent anywhere (each destination can ask for more)."
    )
    max_log_lines: int = Field(20, description=f"Log lines shown per CloudWatch Logs batch "
                               f"({MAX_LOG_LINES[0]}-{MAX_LOG_LINES[1]}).")
    http_timeout_seconds: int = Field(5, description=f"Timeout of one webhook call, in seconds "
                                      f"({HTTP_TIMEOUT_SECONDS[0]}-{HTTP_TIMEOUT_SECONDS[1]}).")
    retry_attempts: int = Field(
        DELIVERY_ATTEMPTS[1] - 1, ge=DELIVERY_ATTEMPTS[0] - 1, le=DELIVERY_ATTEMPTS[1] - 1,
        description="Lambda's retries of an event whose delivery failed transiently (0-2); a destination "
        "still failing on the last attempt gets the message kept in the undelivered queue.",
    )
    subscribe_ops_topic: bool = Field(
        True, description="Subscribe to the ops topic, so every automation's action reports and alarms reach chat."
    )
    ops_topic_min_severity: Severity = Field(
        "warning",
        description="Action reports on the ops topic below this severity are filtered out by the subscription "
        "(an SNS filter policy on the report's severity); alarms on the topic always pass; info = no filter.",
    )
    extra_sns_topic_arns: list[str] = Field(
        default_factory=list, description="ARNs of existing SNS topics (e.g. your alarm topics) to subscribe to."
    )
    log_subscriptions: list[LogSubscription] = Field(
        default_factory=list,
        description="Log groups whose matching lines are sent: [{log_group_name, filter_pattern}].",
    )
    event_rules: EventRules = Field(default_factory=lambda: EventRules.model_validate({}),
                                    description="Built-in EventBridge rules.")
    custom_event_patterns: list[dict[str, Any]] = Field(
        default_factory=list, description="More EventBridge event patterns, one rule each (JSON objects)."
    )

    @field_validator("min_severity", "ops_topic_min_severity")
    @classmethod
    def _severity(cls, value: str) -> str:
        return parse_severity(value)

    @field_validator("max_log_lines")
    @classmethod
    def _log_lines(cls, value: int) -> int:
        return parse_max_log_lines(value)

    @field_validator("http_timeout_seconds")
    @classmethod
    def _timeout(cls, value: int) -> int:
        return parse_http_timeout(value)

    def function_environment(self) -> dict[str, str]:
        """Every variable the function reads that comes from these settings."""
        return {
            "MIN_SEVERITY": self.min_severity,
            "MAX_LOG_LINES": str(self.max_log_lines),
            "HTTP_TIMEOUT_SECONDS": str(self.http_timeout_seconds),
            "DELIVERY_ATTEMPTS": str(self.retry_attempts + 1),
        }

    @field_validator("extra_sns_topic_arns")
    @classmethod
    def _topics(cls, value: list[str]) -> list[str]:
        for arn in value:
            if not _SNS_ARN_RE.fullmatch(arn):
                raise ValueError(f"{arn!r} is not an SNS topic ARN (arn:aws:sns:<region>:<account>:<name>)")
        if len(set(value)) != len(value):
            raise ValueError("a topic is listed twice")
        return value

    @field_validator("custom_event_patterns")
    @classmethod
    def _patterns(cls, value: list[dict[str, Any]]) -> list[dict[str, Any]]:
        for index, pattern in enumerate(value):
            unknown = sorted(set(pattern) - _PATTERN_KEYS)
            if unknown:
                raise ValueError(f"pattern {index}: unknown top-level key(s) {', '.join(unknown)}; "
                                 f"allowed: {', '.join(sorted(_PATTERN_KEYS))}")
            if "source" not in pattern and "detail-type" not in pattern:
                raise ValueError(f"pattern {index}: give at least 'source' or 'detail-type'")
            _check_pattern(pattern, f"pattern {index}")
        return value

    @model_validator(mode="after")
    def _groups_once(self) -> AlertsSettings:
        names = [item.log_group_name for item in self.log_subscriptions]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise ValueError(f"log_subscriptions: {', '.join(repeated)} listed more than once "
                             "(one subscription per log group; combine the patterns)")
        return self
