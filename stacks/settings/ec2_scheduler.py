"""Settings of the `ec2_scheduler` automation (cdk.json: context.automations.ec2_scheduler).

Schedules are validated here at synth time (IANA timezone, days syntax, HH:MM, dates), with messages
naming the schedule and the field; the function validates them again at run time.
"""

from __future__ import annotations

import json
from typing import Literal

from pydantic import Field, field_validator, model_validator

from ec2_scheduler.config import parse_regions, parse_schedule_name, parse_tag_key, regions_variable
from ec2_scheduler.schedule import (
    Period,
    parse_days,
    parse_hhmm,
    parse_schedule,
    parse_skip_date,
    parse_timezone,
)
from shared.names import parse_kms_key_arn
from stacks.settings.base import AutomationSettings, StrictModel

# Lambda allows 4 KB for all environment variables together; leave room for the others.
MAX_SCHEDULES_JSON = 3000


class PeriodSettings(StrictModel):
    days: str = Field("mon-fri", description="Days of the period: 'mon-fri', 'sat,sun', 'mon,wed-fri', '*'.")
    start: str | None = Field(None, description="Local start time HH:MM (omit for a stop-only period).")
    stop: str | None = Field(None, description="Local stop time HH:MM (omit for a start-only period); a stop "
                             "earlier than the start falls on the next day (overnight).")

    @field_validator("days")
    @classmethod
    def _days(cls, value: str) -> str:
        parse_days(value)
        return value.strip().lower()

    @field_validator("start", "stop")
    @classmethod
    def _times(cls, value: str | None, info: object) -> str | None:
        if value is None:
            return None
        parse_hhmm(value, getattr(info, "field_name", "time"))
        return value.strip()

    @model_validator(mode="after")
    def _one_side(self) -> PeriodSettings:
        Period(days=parse_days(self.days), start=parse_hhmm(self.start, "start") if self.start else None,
               stop=parse_hhmm(self.stop, "stop") if self.stop else None)
        return self


class ScheduleSettings(StrictModel):
    timezone: str = Field("UTC", description="IANA timezone of the periods, e.g. Europe/Berlin.")
    periods: list[PeriodSettings] = Field(default_factory=list, description="One or more periods; a resource "
                                          "runs while any of them says so.")
    skip_dates: list[str] = Field(default_factory=list, description="Dates (YYYY-MM-DD, local) on which the "
                                  "resources stay stopped all day (holidays).")
    enforced: bool = Field(default=False, description="Keep the desired state even against manual starts/stops.")
    stop_new_instances: bool = Field(default=True, description="Stop a newly tagged running instance found outside "
                                     "its periods (else it keeps running until the next stop).")
    hibernate: bool = Field(default=False, description="Hibernate EC2 instances configured for it instead of stopping "
                            "(others are stopped normally).")

    def as_json(self) -> dict[str, object]:
        """The schedule as the function reads it (unset fields left out)."""
        return self.model_dump(exclude_none=True)

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        parse_timezone(value)
        return value.strip()

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
            parse_skip_date(text)
        return [text.strip() for text in value]


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
        for name, schedule in value.items():
            parse_schedule_name(name)
            parse_schedule(name, schedule.as_json())  # the function's own parser agrees
        return value

    @field_validator("tag_key")
    @classmethod
    def _tag_key(cls, value: str) -> str:
        return parse_tag_key(value)

    @field_validator("regions")
    @classmethod
    def _regions(cls, value: list[str]) -> list[str]:
        return list(parse_regions(value))

    @field_validator("kms_key_arns")
    @classmethod
    def _keys(cls, value: list[str]) -> list[str]:
        return [parse_kms_key_arn(arn) for arn in value]

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
        data = {name: schedule.as_json() for name, schedule in self.schedules.items()}
        return json.dumps(data, separators=(",", ":"), sort_keys=True)

    def function_environment(self) -> dict[str, str]:
        """Every variable the function reads that comes from these settings (``Config.from_env``)."""
        return {
            "SCHEDULES": self.schedules_json(),
            "TAG_KEY": self.tag_key,
            "MODE": self.mode,
            "REGIONS": regions_variable(self.regions),
            "MAX_CHANGES": str(self.max_changes),
            "INCLUDE_RDS": "true" if self.include_rds else "false",
        }
