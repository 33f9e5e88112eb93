"""Settings from the environment: read once in the handler, fail fast with one named error.

Only handlers call these; nothing below a handler reads ``os.environ``. Without a ``default`` a variable
is required: the settings model of the automation writes every variable its function reads, so the
function keeps no second set of defaults.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from typing import Any

MODES = ("enforce", "report")


class ConfigError(ValueError):
    """A function's environment is missing a variable or holds a bad value."""


def _raw(name: str, env: Mapping[str, str] | None) -> str | None:
    source = os.environ if env is None else env
    value = source.get(name)
    if value is None or value.strip() == "":
        return None
    return value.strip()


def env_str(name: str, default: str | None = None, *, env: Mapping[str, str] | None = None) -> str:
    value = _raw(name, env)
    if value is None:
        if default is None:
            raise ConfigError(f"environment variable {name} is required")
        return default
    return value


def env_present(name: str, *, env: Mapping[str, str] | None = None) -> str:
    """A required variable that may be empty (an empty value means "none" for that setting)."""
    source = os.environ if env is None else env
    if name not in source:
        raise ConfigError(f"environment variable {name} is required")
    return source[name].strip()


def env_int(
    name: str,
    default: int | None = None,
    *,
    minimum: int | None = None,
    maximum: int | None = None,
    env: Mapping[str, str] | None = None,
) -> int:
    value = _raw(name, env)
    if value is None:
        if default is None:
            raise ConfigError(f"environment variable {name} is required")
        result = default
    else:
        try:
            result = int(value)
        except ValueError:
            raise ConfigError(f"{name}={value!r} is not a whole number") from None
    if minimum is not None and result < minimum:
        raise ConfigError(f"{name}={result} is below the minimum {minimum}")
    if maximum is not None and result > maximum:
        raise ConfigError(f"{name}={result} is above the maximum {maximum}")
    return result


def env_bool(name: str, default: bool | None = None, *, env: Mapping[str, str] | None = None) -> bool:
    value = _raw(name, env)
    if value is None:
        if default is None:
            raise ConfigError(f"environment variable {name} is required")
        return default
    lowered = value.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name}={value!r} is not a boolean (true/false)")


def env_choice(
    name: str, choices: tuple[str, ...], default: str | None = None, *, env: Mapping[str, str] | None = None
) -> str:
    value = env_str(name, default, env=env).lower()
    if value not in choices:
        raise ConfigError(f"{name}={value!r} is not one of {', '.join(choices)}")
    return value


def env_mode(default: str | None = "enforce", *, env: Mapping[str, str] | None = None) -> str:
    """``MODE``: ``enforce`` changes resources, ``report`` only says what it would change."""
    return env_choice("MODE", MODES, default, env=env)


def env_json(name: str, default: Any = None, *, env: Mapping[str, str] | None = None) -> Any:
    value = _raw(name, env)
    if value is None:
        if default is None:
            raise ConfigError(f"environment variable {name} is required")
        return default
    try:
        return json.loads(value)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{name} is not valid JSON: {exc.msg} at position {exc.pos}") from None


def env_list(name: str, default: list[str] | None = None, *, env: Mapping[str, str] | None = None) -> list[str]:
    """A comma-separated list; empty items are dropped."""
    value = _raw(name, env)
    if value is None:
        if default is None:
            raise ConfigError(f"environment variable {name} is required")
        return list(default)
    return [item.strip() for item in value.split(",") if item.strip()]


def env_regions(*, env: Mapping[str, str] | None = None) -> list[str]:
    """``REGIONS`` (comma list), defaulting to the function's own region (``AWS_REGION``)."""
    own = _raw("AWS_REGION", env) or _raw("AWS_DEFAULT_REGION", env) or "us-east-1"
    return env_list("REGIONS", [own], env=env)


def parsed[T](name: str, parse: Callable[[Any], T], value: Any) -> T:
    """``parse(value)``, its ValueError turned into a ConfigError naming the variable."""
    try:
        return parse(value)
    except ValueError as exc:
        raise ConfigError(f"{name}: {exc}") from None


def env_parsed[T](name: str, parse: Callable[[str], T], env: Mapping[str, str] | None = None) -> T:
    """The required variable ``name`` through its parser (the same parser the settings model validates with)."""
    return parsed(name, parse, env_str(name, env=env))
