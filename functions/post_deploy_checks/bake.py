"""Waiting and baking without paying for a waiting Lambda: CodePipeline continuation tokens.

A job can be kept in progress: the function answers PutJobSuccessResult with a continuation token, and
CodePipeline invokes it again (tens of seconds later) with that token. Two phases use it:

- ``stabilize_seconds``: wait that long after the action starts before the first checks;
- ``bake_seconds``: after the checks pass, keep the job in progress and, every ``bake_interval_seconds``,
  run the checks again and read the alarms; fail at the first failure, pass when the bake ends clean.

The token carries what the next invocation needs (the job it belongs to, the phase, when to check next,
when the bake ends, how many bake checks passed, when the token expires) and is authenticated with
HMAC-SHA256 under a key only the function can read, so a forged or altered token, or one made for another
job, is refused; so is an expired one. Pure: the caller passes "now" and the key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from post_deploy_checks.spec import MAX_TOKEN, ChecksConfig, ConfigurationError

TOKEN_VERSION = 1
# A token stays valid this long after its phase should have ended (CodePipeline re-invokes within seconds
# to minutes; a token older than this belongs to an execution that was stopped or superseded).
TOKEN_GRACE = timedelta(minutes=30)


class TokenError(ConfigurationError):
    """A continuation token that this function did not make for this job, or one that has expired."""


@dataclass(frozen=True)
class TokenState:
    job_id: str
    phase: str  # "stabilize" | "bake"
    next_at: datetime
    expires_at: datetime
    bake_ends_at: datetime | None = None
    passes: int = 0  # bake checks passed so far (the first, pre-bake check included)


@dataclass(frozen=True)
class Wait:
    """Not yet: answer with a continuation token for ``state``."""

    state: TokenState

    def summary(self) -> str:
        if self.state.phase == "stabilize":
            return f"waiting until {_iso(self.state.next_at)} before running the checks"
        ends = self.state.bake_ends_at or self.state.next_at
        return (f"baking: {self.state.passes} check run(s) passed; next at {_iso(self.state.next_at)}, the bake "
                f"ends at {_iso(ends)}")


@dataclass(frozen=True)
class Check:
    """Run the checks now; ``state`` is None for the first run (no bake under way)."""

    state: TokenState | None = None


def start(now: datetime, parsed: ChecksConfig, job_id: str) -> Wait | Check:
    """The first invocation of a job: stabilize first, or check now."""
    if parsed.stabilize_seconds <= 0:
        return Check()
    ready_at = now + timedelta(seconds=parsed.stabilize_seconds)
    return Wait(TokenState(job_id, "stabilize", ready_at, ready_at + TOKEN_GRACE))


def resume(now: datetime, state: TokenState) -> Wait | Check:
    """A re-invocation with our token: the same token again until its time has come, then check."""
    return Check(state) if now >= state.next_at else Wait(state)


def after_pass(now: datetime, parsed: ChecksConfig, job_id: str, state: TokenState | None) -> Wait | None:
    """The checks passed: keep baking (the next token), or None when the job is done."""
    if parsed.bake_seconds <= 0:
        return None
    if state is None or state.phase == "stabilize" or state.bake_ends_at is None:
        ends, passes = now + timedelta(seconds=parsed.bake_seconds), 1
    else:
        ends, passes = state.bake_ends_at, state.passes + 1
        if now >= ends:
            return None
    next_at = min(now + timedelta(seconds=parsed.bake_interval_seconds), ends)
    return Wait(TokenState(job_id, "bake", next_at, ends + TOKEN_GRACE, ends, passes))


def baked_for(now: datetime, state: TokenState | None, parsed: ChecksConfig) -> str:
    """How far into the bake a run is, for messages ("" when not baking)."""
    if state is None or state.phase != "bake" or state.bake_ends_at is None:
        return ""
    elapsed = parsed.bake_seconds - max((state.bake_ends_at - now).total_seconds(), 0)
    return f"bake check {state.passes + 1}, {elapsed:.0f} s of {parsed.bake_seconds} s into the bake"


# --------------------------------------------------------------------------- the token


def make_token(state: TokenState, key: bytes) -> str:
    """``<payload>.<signature>``, both base64url: the payload compact JSON, the signature HMAC-SHA256."""
    payload = {"v": TOKEN_VERSION, "j": state.job_id, "p": state.phase, "n": _epoch(state.next_at),
               "x": _epoch(state.expires_at), "c": state.passes}
    if state.bake_ends_at is not None:
        payload["e"] = _epoch(state.bake_ends_at)
    body = _b64(json.dumps(payload, separators=(",", ":"), sort_keys=True).encode())
    token = f"{body}.{_b64(_sign(key, body))}"
    if len(token) > MAX_TOKEN:  # a job id is at most a few dozen characters: this cannot happen
        raise ValueError(f"continuation token of {len(token)} characters, over {MAX_TOKEN}")
    return token


def read_token(token: str, key: bytes, job_id: str, now: datetime) -> TokenState:
    """The state in ``token``; :class:`TokenError` when it is not ours, not this job's, or expired."""
    body, _, signature = token.partition(".")
    try:
        valid = hmac.compare_digest(_unb64(signature), _sign(key, body))
        data = json.loads(_unb64(body)) if valid else None
    except (ValueError, binascii.Error):
        valid, data = False, None
    if not valid or not isinstance(data, dict) or data.get("v") != TOKEN_VERSION:
        raise TokenError(f"continuationToken was not made by post_deploy_checks (got {_clip(token)!r})")
    if data.get("j") != job_id:
        raise TokenError("continuationToken was made for another job")
    try:
        state = TokenState(str(data["j"]), str(data["p"]), _time(data["n"]), _time(data["x"]),
                           _time(data["e"]) if "e" in data else None, int(data["c"]))
    except (KeyError, TypeError, ValueError):
        raise TokenError("continuationToken is incomplete") from None
    if now >= state.expires_at:
        raise TokenError(f"continuationToken expired at {_iso(state.expires_at)}; retry the stage to start again")
    return state


def _sign(key: bytes, body: str) -> bytes:
    return hmac.new(key, b"post_deploy_checks/continuation\n" + body.encode(), hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _epoch(when: datetime) -> int:
    return int(when.timestamp())


def _time(value: object) -> datetime:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError("not a time")
    return datetime.fromtimestamp(value, UTC)


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).isoformat()


def _clip(token: str) -> str:
    return token if len(token) <= 60 else token[:59] + "…"
