"""The function's settings: ``Config.from_env`` and the parser of every setting.

The settings model (stacks/settings/ec2_scheduler.py) validates cdk.json with these same parsers and
writes every variable read here (``Ec2SchedulerSettings.function_environment()``); the stack adds
``NOTIFY_TOPIC_ARN``. Every variable is required: there is no second set of defaults.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ec2_scheduler.schedule import Schedule, ScheduleError, parse_schedules
from shared.config import ConfigError, env_bool, env_int, env_json, env_mode, env_str
from shared.fanout import FanoutConfig
from shared.targets import TargetSpec
from shared.targets import parse_regions as parse_region_names

OWN_REGION = "self"  # REGIONS=self: the function's own region (AWS_REGION)
NO_PARAMETER = "none"  # SCHEDULES_PARAMETER=none: the schedules come from SCHEDULES only
_SCHEDULE_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.:/=+@-]{0,127}$")
_TAG_KEY_RE = re.compile(r"^[A-Za-z0-9 _.:/=+@-]{1,120}$")
_PARAMETER_RE = re.compile(r"^/?[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$")


def parse_tag_key(value: str) -> str:
    """The tag key naming a resource's schedule (``<key>State``, ``<key>Error``, ``<key>Override`` derive from it)."""
    key = value.strip() if isinstance(value, str) else ""
    if not _TAG_KEY_RE.match(key) or key.lower().startswith("aws:"):
        raise ValueError(f"{value!r} must be a tag key of 1-120 characters (letters, digits, spaces, "
                         "_ . : / = + @ -) not starting with 'aws:'")
    return key


def parse_parameter_name(value: str) -> str:
    """``schedules_parameter``: an SSM parameter name (``/opsauto/schedules`` or ``schedules``)."""
    name = value.strip() if isinstance(value, str) else ""
    reserved = name.lower().lstrip("/").startswith(("aws", "ssm"))
    if name.lower() == NO_PARAMETER or len(name) > 1011 or not _PARAMETER_RE.match(name) or reserved:
        raise ValueError(f"{value!r} must be an SSM parameter name: letters, digits, _ . - and / between levels "
                         "(e.g. /opsauto/schedules), not starting with aws or ssm")
    return name


def parse_regions(values: Iterable[str]) -> tuple[str, ...]:
    """Region names, each once (an empty list: the function's own region)."""
    return parse_region_names(values)


def regions_variable(regions: Iterable[str]) -> str:
    """``REGIONS``: a comma list, or ``self`` for the function's own region."""
    names = list(regions)
    return ",".join(names) if names else OWN_REGION


def parse_regions_variable(value: str, own_region: str | None) -> tuple[str, ...]:
    if value.strip() == OWN_REGION:
        if not own_region:
            raise ConfigError(f"REGIONS={OWN_REGION} needs AWS_REGION (set by Lambda)")
        return (own_region,)
    try:
        return parse_regions(item.strip() for item in value.split(",") if item.strip())
    except ValueError as exc:
        raise ConfigError(f"REGIONS: {exc}") from None


def parse_schedule_name(name: str) -> str:
    """A schedule's name is the value of the schedule tag: 1-128 letters, digits, spaces or ``_.:/=+@-``."""
    if not _SCHEDULE_NAME_RE.fullmatch(name):
        raise ValueError(f"schedule name {name!r} must be a tag value: 1-128 letters, digits, spaces or "
                         "_ . : / = + @ -, starting with a letter or digit")
    return name


def parse_schedules_setting(raw: Any) -> tuple[dict[str, Schedule], dict[str, str]]:
    """``SCHEDULES``: every schedule, and the malformed ones by name (they do not stop the others)."""
    try:
        schedules, bad = parse_schedules(raw)
    except ScheduleError as exc:
        raise ConfigError(f"SCHEDULES: {exc}") from None
    for name in list(schedules):
        try:
            parse_schedule_name(name)
        except ValueError as exc:
            bad[name] = str(exc)
            del schedules[name]
    return schedules, bad


@dataclass(frozen=True)
class Config:
    """From ``SCHEDULES``, ``SCHEDULES_PARAMETER``, ``TAG_KEY``, ``MODE``, ``REGIONS``, ``MAX_CHANGES``,
    ``INCLUDE_RDS``, ``INCLUDE_ASG`` and ``NOTIFY_TOPIC_ARN``; organization-wide also ``TARGET_ACCOUNTS`` /
    ``TARGET_OUS`` / ``MEMBER_ROLE_NAME``
    (``targets``, ``shared.targets``) and the work queue's variables (``fanout``, ``shared.fanout``; None
    without ``WORK_QUEUE_URL``: one run in this account, as before)."""

    schedules: Mapping[str, Schedule]
    bad_schedules: Mapping[str, str]
    tag_key: str
    mode: str
    regions: tuple[str, ...]
    topic_arn: str
    max_changes: int
    include_rds: bool
    include_asg: bool
    schedules_parameter: str  # SSM parameter with more schedules (JSON like SCHEDULES); "" for none
    targets: TargetSpec
    fanout: FanoutConfig | None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Config:
        source = os.environ if env is None else env
        schedules, bad = parse_schedules_setting(env_json("SCHEDULES", env=source))
        try:
            tag_key = parse_tag_key(env_str("TAG_KEY", env=source))
        except ValueError as exc:
            raise ConfigError(f"TAG_KEY: {exc}") from None
        regions = parse_regions_variable(env_str("REGIONS", env=source), source.get("AWS_REGION"))
        try:
            raw_parameter = env_str("SCHEDULES_PARAMETER", env=source)
            parameter = "" if raw_parameter == NO_PARAMETER else parse_parameter_name(raw_parameter)
        except ValueError as exc:
            raise ConfigError(f"SCHEDULES_PARAMETER: {exc}") from None
        return cls(
            schedules=schedules,
            bad_schedules=bad,
            tag_key=tag_key,
            mode=env_mode(None, env=source),
            regions=regions,
            topic_arn=env_str("NOTIFY_TOPIC_ARN", env=source),
            max_changes=env_int("MAX_CHANGES", minimum=0, env=source),
            include_rds=env_bool("INCLUDE_RDS", env=source),
            include_asg=env_bool("INCLUDE_ASG", env=source),
            schedules_parameter=parameter,
            # REGIONS=self resolved above: the targets' regions are the same list.
            targets=TargetSpec.from_env({**source, "REGIONS": ",".join(regions)}),
            fanout=FanoutConfig.from_env(source),
        )
