"""Settings of the `ec2_scheduler` automation (cdk.json: context.automations.ec2_scheduler).

Schedules are validated here at synth time (IANA timezone, days syntax, HH:MM, dates), with messages
naming the schedule and the field; the function validates them again at run time.
"""

from __future__ import annotations

import json
import re
from datetime import date
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator, model_validator

from stacks.settings.base import AutomationSettings, StrictModel

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_TIME_RE = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.:/=+@-]{0,127}$")
_TAG_KEY_RE = re.compile(r"^[A-Za-z0-9 _.:/=+@-]{1,120}$")
_REGION_RE = re.compile(r"^[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-\d$")
# Lambda allows 4 KB for all environment variables together; leave room for the others.
MAX_SCHEDULES_JSON = 3000


def _check_days(text: str) -> str:
    cleaned = text.strip().lower()
    if cleaned in ("*", "all", "daily"):
        return cleaned
    if not cleaned:
        raise ValueError("days is empty; use e.g. 'mon-fri', 'sat,sun', 'mon,wed-fri' or '*'")
    for item in cleaned.split(","):
        for name in item.strip().split("-") if "-" in item else [item.strip()]:
            if name.strip() not in DAY_NAMES:
                raise ValueError(f"days {text!r}: {name.strip()!r} is not a day; use mon, tue, wed, thu, fri, sat, "
                                 "sun, ranges like mon-fri, commas, or *")
        if item.count("-") > 1:
            raise ValueError(f"days {text!r}: {item.strip()!r} is not a day or a range like mon-fri")
    return cleaned


def _check_time(value: str | None, field: str) -> str | None:
    if value is None:
        return None
    if not _TIME_RE.match(value.strip()):
        raise ValueError(f"{field} {value!r} is not a time HH:MM (00:00-23:59)")
    return value.strip()


class PeriodSettings(StrictModel):
    days: str = Field("mon-fri", description="Days of the period: 'mon-fri', 'sat,sun', 'mon,wed-fri', '*'.")
    start: str | None = Field(None, description="Local start time HH:MM (omit for a stop-only period).")
    stop: str | None = Field(None, description="Local stop time HH:MM (omit for a start-only period); a stop "
                             "earlier than the start falls on the next day (overnight).")

    @field_validator("days")
    @classmethod
    def _days(cls, value: str) -> str:
        return _check_days(value)

    @field_validator("start", "stop")
    @classmethod
    def _times(cls, value: str | None, info: object) -> str | None:
        return _check_time(value, getattr(info, "field_name", "time"))

    @model_validator(mode="after")
    def _one_side(self) -> PeriodSettings:
        if self.start is None and self.stop is None:
            raise ValueError("a period needs a start, a stop or both (HH:MM)")
        if self.start is not None and self.start == self.stop:
            raise ValueError(f"start and stop are both {self.start}; they must differ")
        return self


class ScheduleSettings(StrictModel):
    timezone: str = Field("UTC", description="IANA timezone of the periods, e.g. Europe/Berlin.")
    periods: list[PeriodSettings] = Field(default_factory=list, description="One or more periods.")
    skip_dates: list[str] = Field(default_factory=list, description="Dates (YYYY-MM-DD, local) on which the "
                                  "resources stay stopped all day (holidays).")
    enforced: bool = Field(False, description="Keep the desired state even against manual starts/stops.")
    stop_new_instances: bool = Field(True, description="Stop a newly tagged running instance found outside "
                                     "its periods (else it keeps running until the next stop).")
    hibernate: bool = Field(False, description="Hibernate EC2 instances configured for it instead of stopping "
                            "(others are stopped normally).")

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"timezone {value!r} is not an IANA timezone (e.g. Europe/Berlin, "
                             "America/New_York, UTC)") from None
        return value

    @field_validator("periods")
    @classmethod
    def _periods(cls, value: list[PeriodSettings]) -> list[PeriodSettings]:
        if not value:
            raise ValueError("needs at least one period, e.g. {\"days\": \"mon-fri\", \"start\": \"08:00\", "
                             "\"stop\": \"18:00\"}")
        return value

    @field_validator("skip_dates")
    @classmethod
    def _dates(cls, value: list[str]) -> list[str]:
        for text in value:
            if not _DATE_RE.match(text):
                raise ValueError(f"{text!r} is not a date YYYY-MM-DD")
            try:
                date.fromisoformat(text)
            except ValueError as exc:
                raise ValueError(f"{text!r} is not a valid date ({exc})") from None
        return value


class Ec2SchedulerSettings(AutomationSettings):
    """Starts and stops tagged EC2 instances and RDS databases on named schedules."""

    timeout_seconds: int = Field(180, ge=1, le=900, description="Lambda timeout in seconds (less than the "
                                 "interval, so runs never overlap).")
    schedules: dict[str, ScheduleSettings] = Field(
        default_factory=lambda: {
            "office-hours": ScheduleSettings(
                timezone="UTC", periods=[PeriodSettings(days="mon-fri", start="08:00", stop="18:00")]
            )
        },
        description="Named schedules; resources opt in with the tag <tag_key>=<schedule name>.",
    )
    tag_key: str = Field("Schedule", description="Tag key whose value names a resource's schedule. The "
                         "scheduler also uses <tag_key>State (its record) and <tag_key>Override.")
    mode: Literal["enforce", "report"] = Field("enforce", description="enforce acts; report only says what it "
                                               "would do.")
    regions: list[str] = Field(default_factory=list, description="Regions to manage (empty: the stack's own).")
    interval_minutes: int = Field(5, ge=1, le=60, description="Minutes between runs (EventBridge Scheduler rate).")
    max_changes: int = Field(500, ge=0, description="Refuse and report instead of acting when a run would start "
                             "or stop more resources than this.")
    include_rds: bool = Field(True, description="Also schedule RDS DB instances and Aurora clusters with the tag.")
    kms_key_arns: list[str] = Field(default_factory=list, description="KMS keys (ARNs) of customer-managed "
                                    "keys encrypting the EBS volumes of scheduled instances; starting them "
                                    "needs kms:CreateGrant on these keys.")

    @field_validator("schedules")
    @classmethod
    def _names(cls, value: dict[str, ScheduleSettings]) -> dict[str, ScheduleSettings]:
        for name in value:
            if not _NAME_RE.match(name):
                raise ValueError(f"schedule name {name!r} must be a tag value: 1-128 letters, digits, spaces or "
                                 "_ . : / = + @ -, starting with a letter or digit")
        return value

    @field_validator("tag_key")
    @classmethod
    def _tag_key(cls, value: str) -> str:
        if not _TAG_KEY_RE.match(value) or value.lower().startswith("aws:"):
            raise ValueError(f"{value!r} must be a tag key of 1-120 characters (letters, digits, spaces, "
                             "_ . : / = + @ -) not starting with 'aws:'")
        return value

    @field_validator("regions")
    @classmethod
    def _regions(cls, value: list[str]) -> list[str]:
        for region in value:
            if not _REGION_RE.match(region):
                raise ValueError(f"{region!r} is not a region name like eu-central-1")
        return value

    @field_validator("kms_key_arns")
    @classmethod
    def _keys(cls, value: list[str]) -> list[str]:
        for arn in value:
            if not re.match(r"^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key/[A-Za-z0-9-]+$", arn):
                raise ValueError(f"{arn!r} is not a KMS key ARN (arn:aws:kms:<region>:<account>:key/<id>)")
        return value

    @model_validator(mode="after")
    def _cross(self) -> Ec2SchedulerSettings:
        if self.timeout_seconds >= self.interval_minutes * 60:
            raise ValueError(f"timeout_seconds ({self.timeout_seconds}) must be less than interval_minutes "
                             f"({self.interval_minutes}) x 60 so that runs never overlap")
        if len(self.schedules_json()) > MAX_SCHEDULES_JSON:
            raise ValueError(f"schedules take {len(self.schedules_json())} characters as JSON; Lambda environment "
                             f"variables allow about {MAX_SCHEDULES_JSON} here. Use fewer or shorter schedules")
        return self

    def schedules_json(self) -> str:
        """The SCHEDULES environment variable: compact JSON, unset fields left out."""
        data = {
            name: schedule.model_dump(exclude_defaults=False, exclude_none=True)
            for name, schedule in self.schedules.items()
        }
        return json.dumps(data, separators=(",", ":"), sort_keys=True)
