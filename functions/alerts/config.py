"""The alerts function's settings: one pure parser per setting, and ``Config.from_env``.

The settings model (``stacks/settings/alerts.py``) validates with these parsers at synth and writes the
environment with ``function_environment()``; ``Config.from_env`` reads exactly that environment plus the
resource variables the stack adds (secret, table, queue). Every variable is required: no second defaults.
Organization-wide, the target variables of ``shared.targets`` (``TARGET_ACCOUNTS`` ...) say that account names
may be asked of Organizations; absent, messages name account ids only.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from alerts import delivery
from shared.config import env_parsed as _env
from shared.config import env_str
from shared.reports import SEVERITIES
from shared.targets import TargetSpec

MAX_LOG_LINES = (1, 200)
HTTP_TIMEOUT_SECONDS = (1, 30)
# Lambda's asynchronous retries are 0-2, so an event is tried 1-3 times.
DELIVERY_ATTEMPTS = (1, 3)


def parse_severity(value: str) -> str:
    """``info`` | ``warning`` | ``critical``."""
    text = str(value).strip().lower()
    if text not in SEVERITIES:
        raise ValueError(f"{value!r} is not one of {', '.join(SEVERITIES)}")
    return text


def _bounded(value: str | int, bounds: tuple[int, int], what: str) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be a whole number, not {value!r}") from None
    low, high = bounds
    if not low <= number <= high:
        raise ValueError(f"{what} must be from {low} to {high}, not {number}")
    return number


def parse_max_log_lines(value: str | int) -> int:
    """Log lines shown per CloudWatch Logs batch: 1-200."""
    return _bounded(value, MAX_LOG_LINES, "max_log_lines")


def parse_http_timeout(value: str | int) -> int:
    """Seconds one webhook call may take: 1-30."""
    return _bounded(value, HTTP_TIMEOUT_SECONDS, "http_timeout_seconds")


def parse_delivery_attempts(value: str | int) -> int:
    """How many invocations Lambda gives one event (1 + its retries): 1-3."""
    return _bounded(value, DELIVERY_ATTEMPTS, "delivery_attempts")


@dataclass(frozen=True)
class Config:
    secret_arn: str
    min_severity: str
    max_log_lines: int
    http_timeout_seconds: int
    delivery_table: str
    undelivered_queue_url: str
    delivery_attempts: int
    region: str
    # Organization-wide (``TARGET_ACCOUNTS`` set): account names come from Organizations; no account is assumed.
    targets: TargetSpec

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Config:
        return cls(
            secret_arn=env_str("DESTINATIONS_SECRET_ARN", env=env),
            min_severity=_env("MIN_SEVERITY", parse_severity, env),
            max_log_lines=_env("MAX_LOG_LINES", parse_max_log_lines, env),
            http_timeout_seconds=_env("HTTP_TIMEOUT_SECONDS", parse_http_timeout, env),
            delivery_table=env_str("DELIVERY_TABLE_NAME", env=env),
            undelivered_queue_url=env_str("UNDELIVERED_QUEUE_URL", env=env),
            delivery_attempts=_env("DELIVERY_ATTEMPTS", parse_delivery_attempts, env),
            region=env_str("AWS_REGION", env=env),
            targets=TargetSpec.from_env(env),
        )

    def policy(self, remaining: Callable[[], float] | None = None) -> delivery.Policy:
        return delivery.Policy(timeout=float(self.http_timeout_seconds), retry_after_cap=5.0, remaining=remaining)
