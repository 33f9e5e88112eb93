"""Waiting without paying for it: CodePipeline continuation tokens.

Pure: the caller passes "now"; no boto3, no environment.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from post_deploy_checks.spec import ConfigurationError
from shared.text import truncate

TOKEN_KIND = "post_deploy_checks/stabilize"  # noqa: S105 (a label, not a secret)


@dataclass(frozen=True)
class Wait:
    """Not yet: report success with this continuation token; CodePipeline invokes the function again."""

    token: str
    ready_at: datetime


@dataclass(frozen=True)
class RunNow:
    """Run the checks now."""


def make_token(ready_at: datetime) -> str:
    return json.dumps({"kind": TOKEN_KIND, "ready_at": ready_at.astimezone(UTC).isoformat()}, sort_keys=True)


def parse_token(token: str) -> datetime:
    """The ready-at time of a token this function made; ConfigurationError for anything else."""
    try:
        data = json.loads(token)
        if not isinstance(data, dict) or data.get("kind") != TOKEN_KIND:
            raise ValueError("not a post_deploy_checks token")
        ready_at = datetime.fromisoformat(str(data["ready_at"]))
    except (ValueError, KeyError, TypeError):
        raise ConfigurationError("continuationToken was not made by post_deploy_checks "
                                 f"(got {truncate(token, 60, '…')!r})") from None
    if ready_at.tzinfo is None:
        ready_at = ready_at.replace(tzinfo=UTC)
    return ready_at


def stabilize_decision(now: datetime, stabilize_seconds: int, token: str | None) -> Wait | RunNow:
    """First invocation with ``stabilize_seconds`` > 0: wait until now + stabilize_seconds.

    Re-invocation with our token: wait again (same ready-at time) until it has passed, then run.
    """
    if token:
        ready_at = parse_token(token)
        return RunNow() if now >= ready_at else Wait(token, ready_at)
    if stabilize_seconds <= 0:
        return RunNow()
    ready_at = now + timedelta(seconds=stabilize_seconds)
    return Wait(make_token(ready_at), ready_at)
