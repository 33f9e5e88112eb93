"""The CDK app through the real cdk CLI (node_modules/.bin/cdk), as a user runs it."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from stacks.assembly import build
from stacks.settings import AUTOMATION_NAMES
from tests.stacks.helpers import nag_errors

ROOT = Path(__file__).resolve().parents[2]
CDK = ROOT / "node_modules" / ".bin" / "cdk"

pytestmark = pytest.mark.skipif(not CDK.exists(), reason="cdk CLI not installed (make install)")


def cdk_synth(tmp_path: Path, *context: str) -> subprocess.CompletedProcess[str]:
    args = [str(CDK), "synth", "--quiet", "--output", str(tmp_path / "out")]
    for item in context:
        args += ["-c", item]
    env = {**os.environ, "CDK_DISABLE_VERSION_CHECK": "1", "CDK_CLI_NOTICES": "false"}
    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=300, env=env, check=False)


def test_nothing_enabled_yields_core_stack_alone_and_says_what_can_be_enabled(tmp_path: Path) -> None:
    result = cdk_synth(tmp_path)
    assert result.returncode == 0, result.stderr
    templates = sorted(p.name for p in (tmp_path / "out").glob("*.template.json"))
    assert templates == ["opsauto-core.template.json"]
    assert "no automation is enabled" in result.stderr
    for name in AUTOMATION_NAMES:
        assert name in result.stderr


def test_bad_setting_fails_synth_with_key_path_and_no_traceback(tmp_path: Path) -> None:
    result = cdk_synth(tmp_path, "enable=alerts,teleport")
    assert result.returncode != 0
    assert "enable: unknown automation(s) teleport" in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_project_value_from_context_fails_synth(tmp_path: Path) -> None:
    project = json.loads((ROOT / "cdk.json").read_text())["context"]["project"]
    project["architecture"] = "sparc"
    result = cdk_synth(tmp_path, f"project={json.dumps(project)}")
    assert result.returncode != 0
    assert "architecture: got 'sparc'; allowed values: 'arm64' or 'x86_64'" in result.stderr
    assert "Traceback" not in result.stderr


def test_core_stack_is_nag_clean() -> None:
    assembly = build({})
    assert nag_errors(assembly.core) == []


def test_every_stack_of_the_app_as_configured_is_nag_clean() -> None:
    """cdk.json as shipped, with every automation switched on: no unsuppressed cdk-nag finding anywhere."""
    context = json.loads((ROOT / "cdk.json").read_text())["context"]
    assembly = build(context, "all")
    assert sorted(assembly.stacks) == sorted(AUTOMATION_NAMES)
    findings = {name: nag_errors(stack) for name, stack in assembly.stacks.items()}
    assert findings == {name: [] for name in AUTOMATION_NAMES}
