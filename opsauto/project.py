"""The app's settings as the operator command needs them: which automations exist, their stacks, modes."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stacks.settings import AUTOMATION_NAMES, ProjectSettings, SettingsError, load_settings


class OpsautoError(Exception):
    """Something the operator must fix (credentials, a stack, a name); one line, no traceback."""


@dataclass(frozen=True)
class Automation:
    name: str
    stack_name: str
    enabled: bool
    mode: str | None  # from the settings; the deployed function's MODE wins where deployed


@dataclass(frozen=True)
class Project:
    root: Path
    settings: ProjectSettings

    @property
    def prefix(self) -> str:
        return self.settings.prefix

    def automation(self, name: str) -> Automation:
        if name not in AUTOMATION_NAMES:
            raise OpsautoError(f"unknown automation {name!r}; automations: {', '.join(AUTOMATION_NAMES)}")
        settings = getattr(self.settings.automations, name)
        mode = getattr(settings, "mode", None)
        return Automation(name, stack_name(self.prefix, name), bool(settings.enabled),
                          str(mode) if mode is not None else None)

    def automations(self) -> list[Automation]:
        return [self.automation(name) for name in AUTOMATION_NAMES]


def stack_name(prefix: str, automation: str) -> str:
    """The CloudFormation stack of an automation (as the CDK app names it)."""
    return f"{prefix}-{automation.replace('_', '-')}"


def find_root(start: Path | None = None) -> Path:
    """The nearest folder at or above ``start`` holding the app's cdk.json."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "cdk.json").is_file():
            return folder
    raise OpsautoError(f"no cdk.json in {here} or above: run opsauto from the project's folder, or pass --project-dir")


def load_project(root: Path | None = None, enable: str | None = None) -> Project:
    folder = root.resolve() if root else find_root()
    path = folder / "cdk.json"
    try:
        context: dict[str, Any] = json.loads(path.read_text()).get("context", {})
    except (OSError, ValueError) as exc:
        raise OpsautoError(f"{path}: {exc}") from None
    try:
        settings = load_settings(context, enable)
    except SettingsError as exc:
        raise OpsautoError(f"{path}: {exc}") from None
    return Project(folder, settings)
