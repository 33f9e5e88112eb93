"""Routing: which destinations an alert goes to.

Each destination of the secret may carry filters; an alert goes to every destination whose filters all match:

- ``min_severity``: ``info`` (default) | ``warning`` | ``critical``;
- ``sources``: ``alarm``, ``logs``, ``report``, ``sns`` or EventBridge ``source`` values (``aws.guardduty``);
- ``accounts``: 12-digit account ids; ``regions``: region names;
- ``names``: glob patterns (``prod-*``) on the alarm name, log group, report title or SNS subject.

A filter left out matches everything. A destination with ``"default": true`` takes the alerts that no other
destination matched (its own filters still apply). An alert that reaches no destination is counted and
logged by the runner, never dropped silently. Pure: no boto3, no environment.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any

from alerts.alert import Route, at_least
from shared.reports import SEVERITIES

FILTER_KEYS = ("min_severity", "sources", "accounts", "regions", "names")
_ACCOUNT = re.compile(r"^\d{12}$")
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$")
_SOURCE = re.compile(r"^(alarm|logs|report|sns|unknown|[a-z0-9][a-z0-9.\-]*\.[a-z0-9.\-]+)$")


class FilterError(ValueError):
    """A destination's filter is not valid; the message names the destination and the field."""


@dataclass(frozen=True)
class Filters:
    min_severity: str = "info"
    sources: tuple[str, ...] = ()
    accounts: tuple[str, ...] = ()
    regions: tuple[str, ...] = ()
    names: tuple[str, ...] = ()
    default: bool = False

    def matches(self, severity: str, route: Route) -> bool:
        return (
            at_least(severity, self.min_severity)
            and (not self.sources or any(source in self.sources for source in route.sources))
            and (not self.accounts or route.account in self.accounts)
            and (not self.regions or route.region in self.regions)
            and (not self.names or any(fnmatchcase(route.name, pattern) for pattern in self.names))
        )


def _strings(where: str, key: str, value: Any, pattern: re.Pattern[str] | None, what: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not value or not all(isinstance(item, str) and item for item in value):
        raise FilterError(f"{where}.{key} must be a non-empty list of {what}")
    bad = [item for item in value if pattern is not None and not pattern.fullmatch(item)]
    if bad:
        raise FilterError(f"{where}.{key}: {', '.join(map(repr, bad))} {'is' if len(bad) == 1 else 'are'} not {what}")
    return tuple(dict.fromkeys(value))


def parse_filters(where: str, item: Mapping[str, Any]) -> Filters:
    """The filters of one destination entry (``where`` names it, e.g. ``destinations[2]``)."""
    minimum = item.get("min_severity", "info")
    if minimum not in SEVERITIES:
        raise FilterError(f"{where}.min_severity must be one of {', '.join(SEVERITIES)} (got {minimum!r})")
    default = item.get("default", False)
    if not isinstance(default, bool):
        raise FilterError(f"{where}.default must be true or false")
    found: dict[str, tuple[str, ...]] = {}
    checks = {"sources": (_SOURCE, "alarm, logs, report, sns or EventBridge sources such as aws.guardduty"),
              "accounts": (_ACCOUNT, "12-digit account ids"), "regions": (_REGION, "region names such as eu-west-1"),
              "names": (None, "glob patterns such as prod-*")}
    for key, (pattern, what) in checks.items():
        if key in item:
            found[key] = _strings(where, key, item[key], pattern, what)
    return Filters(min_severity=minimum, default=default, **found)


@dataclass(frozen=True)
class Routed:
    """The destinations (indexes) an alert goes to; ``fallback`` when only default destinations took it."""

    indexes: tuple[int, ...] = field(default_factory=tuple)
    fallback: bool = False


def route(severity: str, where: Route, filters: Sequence[Filters]) -> Routed:
    """Every non-default destination whose filters match; if none, every matching default destination."""
    chosen = tuple(i for i, f in enumerate(filters) if not f.default and f.matches(severity, where))
    if chosen:
        return Routed(chosen)
    fallback = tuple(i for i, f in enumerate(filters) if f.default and f.matches(severity, where))
    return Routed(fallback, fallback=bool(fallback))
