"""The function's settings, read once per invocation from the environment by the handler."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from ec2_scheduler.schedule import Schedule, ScheduleError, parse_schedules
from shared.config import ConfigError, env_bool, env_int, env_json, env_mode, env_regions, env_str


@dataclass(frozen=True)
class Config:
    """From ``SCHEDULES`` (JSON), ``TAG_KEY``, ``MODE``, ``REGIONS``, ``NOTIFY_TOPIC_ARN``, ``MAX_CHANGES``,
    ``INCLUDE_RDS``."""

    schedules: Mapping[str, Schedule]
    bad_schedules: Mapping[str, str] = field(default_factory=dict)
    tag_key: str = "Schedule"
    mode: str = "enforce"
    regions: tuple[str, ...] = ("us-east-1",)
    topic_arn: str | None = None
    max_changes: int = 500
    include_rds: bool = True

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Config:
        raw = env_json("SCHEDULES", {}, env=env)
        try:
            schedules, bad = parse_schedules(raw)
        except ScheduleError as exc:
            raise ConfigError(str(exc)) from None
        tag_key = env_str("TAG_KEY", "Schedule", env=env)
        if tag_key.lower().startswith("aws:") or len(tag_key) > 120:
            raise ConfigError(f"TAG_KEY={tag_key!r} must not start with 'aws:' and be at most 120 characters")
        topic = env_str("NOTIFY_TOPIC_ARN", "-", env=env)
        return cls(
            schedules=schedules,
            bad_schedules=bad,
            tag_key=tag_key,
            mode=env_mode(env=env),
            regions=tuple(env_regions(env=env)),
            topic_arn=None if topic == "-" else topic,
            max_changes=env_int("MAX_CHANGES", 500, minimum=0, env=env),
            include_rds=env_bool("INCLUDE_RDS", True, env=env),
        )
