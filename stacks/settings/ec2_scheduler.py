"""Settings of the `ec2_scheduler` automation (cdk.json: context.automations.ec2_scheduler).

Schedules are validated here at synth time (IANA timezone, days / monthdays / months syntax, HH:MM,
skip dates, calendar references), with messages naming the schedule and the field; the function
validates them again at run time (and validates the schedules parameter with the same parser).
"""

from __future__ import annotations

import json
from typing import Literal

from pydantic import Field, field_validator, model_validator

from ec2_scheduler.config import (
    NO_PARAMETER,
    parse_parameter_name,
    parse_regions,
    parse_schedule_name,
    parse_tag_key,
    regions_variable,
)
from ec2_scheduler.schedule import (
    Period,
    default_days,
    parse_calendar,
    parse_day_spec,
    parse_hhmm,
    parse_monthdays,
    parse_months,
    parse_schedule,
    parse_skip_entry,
    parse_timezone,
)
from shared.names import parse_kms_key_arn
from stacks.settings.base import AutomationSettings, StrictModel

# Lambda allows 4 KB for all environment variables together (names and values); the stack and the
# platform add NOTIFY_TOPIC_ARN and the Powertools variables to the ones of function_environment().
LAMBDA_ENVIRONMENT_LIMIT = 4096
RESERVED_ENVIRONMENT = 600


class PeriodSettings(StrictModel):
    days: str | None = Field(None, description="Days of the period: 'mon-fri', 'sat,sun', 'mon,wed-fri', '*', "
                             "nth weekdays 'mon#1' (first Monday of the month), 'fri#L' (last Friday), mixed "
                             "'mon-fri,sat#1'. Default mon-fri, or every day when monthdays is set.")
    monthdays: str | None = Field(None, description="Days of the month: '1-7', '15', 'L' (the last day), "
                                  "'1,15', '25-L'. The period applies only on these days.")
    months: str | None = Field(None, description="Months: 'jan-mar,dec', 'nov-feb'. The period applies only in "
                               "these months.")
    start: str | None = Field(None, description="Local start time HH:MM (omit for a stop-only period).")
    stop: str | None = Field(None, description="Local stop time HH:MM (omit for a start-only period); a stop "
                             "earlier than the start falls on the next day (overnight).")

    @field_validator("days")
    @classmethod
    def _days(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parse_day_spec(value)
        return value.strip().lower()

    @field_validator("monthdays")
    @classmethod
    def _monthdays(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parse_monthdays(value)
        return value.strip().upper() if value.strip().lower() == "l" else value.strip()

    @field_validator("months")
    @classmethod
    def _months(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parse_months(value)
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
        days, nth = parse_day_spec(self.days or default_days(self.monthdays is not None))
        Period(days=days, nth=nth, start=parse_hhmm(self.start, "start") if self.start else None,
               stop=parse_hhmm(self.stop, "stop") if self.stop else None,
               monthdays=parse_monthdays(self.monthdays) if self.monthdays else None,
               months=parse_months(self.months) if self.months else None)
        return self


class ScheduleSettings(StrictModel):
    timezone: str = Field("UTC", description="IANA timezone of the periods, e.g. Europe/Berlin.")
    periods: list[PeriodSettings] = Field(default_factory=list, description="One or more periods; a resource "
                                          "runs while any of them says so.")
    skip_dates: list[str] = Field(default_factory=list, description="Local dates on which the resources stay "
                                  "stopped all day: '2026-12-24', ranges '2026-12-24..2027-01-01' (inclusive), "
                                  "yearly '*-12-25'.")
    calendar: str | None = Field(None, description="More skip dates from a calendar: 's3://bucket/holidays.ics' "
                                 "(all-day events of an iCalendar file, with their RRULEs) or 'ssm:<name>' (an SSM "
                                 "Change Calendar: stopped while it is CLOSED). Read at every run.")
    enforced: bool = Field(default=False, description="Keep the desired state even against manual starts/stops.")
    stop_new_instances: bool = Field(default=True, description="Stop a newly tagged running instance found outside "
                                     "its periods (else it keeps running until the next stop).")
    hibernate: bool = Field(default=False, description="Hibernate EC2 instances configured for it instead of stopping "
                            "(others are stopped normally).")
    retain_running: bool = Field(default=False, description="An EC2 instance started by hand before a period's "
                                 "start (its LaunchTime) is not stopped at that period's end (not with enforced).")
    maintenance_window: bool = Field(default=False, description="Start a stopped RDS database for its preferred "
                                     "maintenance window (15 minutes ahead) and stop it again after, so that "
                                     "patches are applied.")

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
            parse_skip_entry(text)
        return [text.strip() for text in value]

    @field_validator("calendar")
    @classmethod
    def _calendar(cls, value: str | None) -> str | None:
        return None if value is None else parse_calendar(value)

    @model_validator(mode="after")
    def _flags(self) -> ScheduleSettings:
        if self.retain_running and self.enforced:
            raise ValueError("retain_running and enforced contradict each other: an enforced schedule stops a "
                             "resource started by hand")
        return self


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
    include_asg: bool = Field(True, description="Also schedule Auto Scaling groups with the tag (min/desired/max "
                              "set to 0 outside the periods, the recorded sizes restored inside).")
    schedules_parameter: str | None = Field(None, description="SSM parameter (String) whose value is more "
                                            "schedules, the same JSON as schedules, read at every run (1-minute "
                                            "cache): they are added to these and replace those of the same name. "
                                            "A value that fails validation is reported and the last valid one used.")
    calendars: list[str] = Field(default_factory=list, description="Calendars the schedules in "
                                 "schedules_parameter may name besides those named here (the function may read "
                                 "only these and the schedules' own calendars).")
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

    @field_validator("schedules_parameter")
    @classmethod
    def _parameter(cls, value: str | None) -> str | None:
        return None if value is None else parse_parameter_name(value)

    @field_validator("calendars")
    @classmethod
    def _calendars(cls, value: list[str]) -> list[str]:
        return [parse_calendar(ref) for ref in value]

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
        size = sum(len(key) + len(value) for key, value in self.function_environment().items())
        if size > LAMBDA_ENVIRONMENT_LIMIT - RESERVED_ENVIRONMENT:
            raise ValueError(f"schedules take {len(self.schedules_json())} bytes as JSON and the function's "
                             f"environment {size} bytes; Lambda allows {LAMBDA_ENVIRONMENT_LIMIT} bytes for all its "
                             f"variables ({RESERVED_ENVIRONMENT} are kept for the platform's). Put the schedules in "
                             "an SSM parameter and name it in schedules_parameter (keep a short default here)")
        return self

    def calendar_refs(self) -> list[str]:
        """Every calendar the function may read: the schedules' own and ``calendars``, once each."""
        named = [s.calendar for s in self.schedules.values() if s.calendar]
        return list(dict.fromkeys([*named, *self.calendars]))

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
            "INCLUDE_ASG": "true" if self.include_asg else "false",
            "SCHEDULES_PARAMETER": self.schedules_parameter or NO_PARAMETER,
        }
