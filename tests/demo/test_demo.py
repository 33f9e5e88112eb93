"""The demo's scenarios run in the test suite too, so `make demo` cannot rot.

The app is synthesized in process with every automation enabled (as `make demo` does with the cdk CLI),
and each scenario runs the functions from those synthesized assets against moto.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import pytest
from aws_cdk import App

from demo.__main__ import available, run_scenario, table
from demo.harness import read_functions
from stacks.assembly import build

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def cdk_out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    outdir = tmp_path_factory.mktemp("cdk.out")
    context = json.loads((ROOT / "cdk.json").read_text())["context"]
    app = App(outdir=str(outdir), context={"aws:cdk:enable-asset-metadata": True})
    build(context, "all", app=app, nag=False)
    app.synth()
    return outdir


def test_every_enabled_automation_has_a_synthesized_function(cdk_out: Path) -> None:
    functions = read_functions(cdk_out)
    for scenario in available():
        for name in getattr(importlib.import_module(f"demo.scenarios.{scenario}"), "USES", [scenario]):
            assert name in functions, f"{name} has a demo scenario but no synthesized function"
            for spec in functions[name]:
                assert (spec.asset_dir / "handler.py").exists()
                assert (spec.asset_dir / name / "handler.py").exists()
                assert (spec.asset_dir / "shared" / "reports.py").exists()


@pytest.mark.parametrize("automation", available())
def test_scenario(automation: str, cdk_out: Path, tmp_path: Path) -> None:
    outcome = run_scenario(automation, cdk_out, tmp_path / "demo-output", verbose=False)
    assert outcome.ok, outcome.summary
    assert outcome.summary
    assert automation in table([outcome])
