"""Judging what the checks observed: one HTTP response against a check's expectations, one alarm's state,
and the summary and failure message of a run within CodePipeline's limits. Pure: no boto3, no network.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from post_deploy_checks.spec import MAX_FAILURE_MESSAGE, MAX_SUMMARY, CheckSpec
from shared.text import truncate


@dataclass(frozen=True)
class HttpResponse:
    """What the runner observed for one request. ``body_error``: why the body has no text (an unknown
    charset); only a body check fails on it."""

    status: int
    body: str
    latency_ms: float
    body_error: str = ""


@dataclass(frozen=True)
class CheckResult:
    name: str
    url: str
    passed: bool
    status: int | None
    latency_ms: float | None
    attempts: int
    reason: str = ""

    def line(self) -> str:
        status = str(self.status) if self.status is not None else "no response"
        latency = f"{self.latency_ms:.0f} ms" if self.latency_ms is not None else "-"
        verdict = "passed" if self.passed else f"FAILED: {self.reason}"
        return f"{self.name} ({status}, {latency}, {self.attempts} attempt(s)): {verdict}"


@dataclass(frozen=True)
class AlarmResult:
    name: str
    state: str | None
    passed: bool
    reason: str = ""

    def line(self) -> str:
        verdict = "passed" if self.passed else f"FAILED: {self.reason}"
        return f"alarm {self.name} ({self.state or 'not found'}): {verdict}"


_NO_VALUE = object()


def evaluate(spec: CheckSpec, response: HttpResponse) -> str | None:
    """None when ``response`` meets every expectation of ``spec``; otherwise the first reason it does not."""
    if response.status not in spec.expect_status:
        expected = " or ".join(str(code) for code in spec.expect_status)
        return f"status {response.status}, expected {expected}"
    if spec.max_latency_ms is not None and response.latency_ms > spec.max_latency_ms:
        return f"latency {response.latency_ms:.0f} ms over max_latency_ms {spec.max_latency_ms}"
    if response.body_error and (spec.body_contains is not None or spec.json is not None):
        checked = "body_contains" if spec.body_contains is not None else "json"
        return f"{response.body_error}, so {checked} cannot be checked"
    if spec.body_contains is not None and spec.body_contains not in response.body:
        return f"body does not contain {_clip(spec.body_contains, 80)!r}"
    if spec.json is not None:
        try:
            document = json.loads(response.body)
        except ValueError:
            return f"body is not JSON, so json path {spec.json.path!r} cannot be checked"
        actual = json_path(document, spec.json.path)
        if actual is _NO_VALUE:
            return f"json path {spec.json.path!r} not found"
        if actual != spec.json.equals or isinstance(actual, bool) != isinstance(spec.json.equals, bool):
            return f"json path {spec.json.path!r} is {_clip(json.dumps(actual), 80)}, expected " \
                   f"{_clip(json.dumps(spec.json.equals), 80)}"
    return None


def json_path(document: Any, path: str) -> Any:
    """The value at a dotted path (``checks.0.state``); a private sentinel when absent."""
    current = document
    for part in path.split("."):
        if isinstance(current, Mapping) and part in current:
            current = current[part]
        elif isinstance(current, list) and part.lstrip("-").isdigit() and -len(current) <= int(part) < len(current):
            current = current[int(part)]
        else:
            return _NO_VALUE
    return current


def evaluate_alarm(name: str, state: str | None) -> AlarmResult:
    """An alarm passes unless it is in ALARM; a missing alarm fails (a typo must not pass silently)."""
    if state is None:
        return AlarmResult(name, None, False, "alarm not found")
    if state == "ALARM":
        return AlarmResult(name, state, False, "alarm is in ALARM")
    return AlarmResult(name, state, True)


# --------------------------------------------------------------------------- summarizing


@dataclass(frozen=True)
class Outcome:
    passed: bool
    checks_passed: int
    checks_failed: int
    summary: str
    failure_message: str
    results: tuple[CheckResult, ...] = ()
    alarms: tuple[AlarmResult, ...] = ()

    @property
    def output_variables(self) -> dict[str, str]:
        return {"checks_passed": str(self.checks_passed), "checks_failed": str(self.checks_failed)}


def summarize(results: Sequence[CheckResult], alarms: Sequence[AlarmResult] = ()) -> Outcome:
    """Counts (alarms count as checks), a summary for executionDetails and a failure message naming each failure."""
    passed = sum(1 for r in results if r.passed) + sum(1 for a in alarms if a.passed)
    failed = len(results) + len(alarms) - passed
    headline = f"{passed} of {passed + failed} check(s) passed"
    lines = [r.line() for r in results] + [a.line() for a in alarms]
    summary = _join_limited(f"{headline}" + (f", {failed} failed" if failed else ""), lines, MAX_SUMMARY)
    failures = [r.line() for r in results if not r.passed] + [a.line() for a in alarms if not a.passed]
    failure_message = ""
    if failed:
        failure_message = _join_limited(f"{failed} of {passed + failed} check(s) failed", failures,
                                        MAX_FAILURE_MESSAGE)
    return Outcome(failed == 0, passed, failed, summary, failure_message, tuple(results), tuple(alarms))


def _join_limited(headline: str, lines: Sequence[str], limit: int) -> str:
    """``headline: line; line; ...`` within ``limit`` characters, saying how many lines were left out."""
    text = headline
    for index, line in enumerate(lines):
        candidate = f"{text}{': ' if index == 0 else '; '}{_clip(line, 400)}"
        rest = len(lines) - index - 1
        reserve = len(f"; ... and {rest} more") if rest else 0
        if len(candidate) + reserve > limit:
            return truncate(f"{text}; ... and {len(lines) - index} more", limit)
        text = candidate
    return truncate(text, limit)


def _clip(text: str, limit: int) -> str:
    return truncate(text, limit, "…")
