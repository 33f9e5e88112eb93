"""``make bench``: every benchmark, cold-start import ratios and deployment sizes -> benchmarks/RESULTS.md.

``python -m benchmarks image_resize [--write benchmarks/RESULTS.md]`` runs the named benchmarks only (no
synth, no cold starts or sizes); ``--write`` then replaces their sections of the file, keeping the others.

Each automation's benchmark is ``benchmarks/<automation>.py`` with ``run() -> dict`` (figures measured
against a baseline in the same run). Cold start: a fresh interpreter importing the handler module from the
synthesized asset, as Lambda does, against a fresh interpreter importing boto3 alone (median of N runs,
same machine, same run). Size: the code asset and its layer, zipped as CDK uploads them.
"""

from __future__ import annotations

import argparse
import importlib
import io
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import traceback
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "functions"))

from demo.harness import read_functions  # noqa: E402
from stacks.settings import AUTOMATION_NAMES  # noqa: E402

COLD_START_RUNS = 11
COLD_START_TARGET = 1.5


def _import_seconds(statement: str, pythonpath: str, env: dict[str, str]) -> float:
    """Wall time of a fresh interpreter that runs ``statement`` (interpreter start included)."""
    code = f"import time; t = time.perf_counter(); {statement}; print(time.perf_counter() - t)"
    result = subprocess.run(
        [sys.executable, "-c", code],
        env={**env, "PYTHONPATH": pythonpath, "PYTHONDONTWRITEBYTECODE": "1"},
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"{statement} from {pythonpath or 'the venv'} failed:\n{result.stderr[-2000:]}")
    return float(result.stdout.strip().splitlines()[-1])


def cold_starts(cdk_out: Path) -> list[dict[str, Any]]:
    """Import time of each handler (from its asset) as a ratio to importing boto3 alone."""
    rows = []
    base_env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "POWERTOOLS"))}
    base_env.update({"AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1",
                     "AWS_LAMBDA_FUNCTION_NAME": "bench", "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13"})
    for automation, specs in sorted(read_functions(cdk_out).items()):
        spec = specs[0]
        env = dict(base_env)
        env.update({k: v for k, v in spec.environment.items() if isinstance(v, str)})
        handler_times, boto_times = [], []
        for _ in range(COLD_START_RUNS):  # interleaved, so machine noise hits both alike
            boto_times.append(_import_seconds("import boto3", "", env))
            handler_times.append(_import_seconds("import handler", str(spec.asset_dir), env))
        handler_s, boto_s = statistics.median(handler_times), statistics.median(boto_times)
        rows.append({
            "automation": automation,
            "handler_import_ms": round(handler_s * 1000, 1),
            "boto3_import_ms": round(boto_s * 1000, 1),
            "ratio": round(handler_s / boto_s, 2),
            "target": f"<= {COLD_START_TARGET}x",
            "meets_target": handler_s / boto_s <= COLD_START_TARGET,
        })
    return rows


def _zipped_size(folder: Path) -> int:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(folder))
    return buffer.tell()


def deployment_sizes(cdk_out: Path) -> list[dict[str, Any]]:
    rows = []
    for template_path in sorted(cdk_out.glob("*.template.json")):
        template = json.loads(template_path.read_text())
        resources = template.get("Resources", {})
        for resource in resources.values():
            if resource.get("Type") != "AWS::Lambda::Function":
                continue
            env = resource["Properties"].get("Environment", {}).get("Variables", {})
            automation = env.get("POWERTOOLS_SERVICE_NAME")
            if not isinstance(automation, str):
                continue
            code = cdk_out / resource["Metadata"]["aws:asset:path"]
            layers = []
            for ref in resource["Properties"].get("Layers", []):
                logical = ref.get("Ref") if isinstance(ref, dict) else None
                layer = resources.get(logical or "", {})
                if layer.get("Type") == "AWS::Lambda::LayerVersion":
                    layers.append(cdk_out / layer["Metadata"]["aws:asset:path"])
            rows.append({
                "automation": automation,
                "code_kb": round(_zipped_size(code) / 1024, 1),
                "layers_kb": round(sum(_zipped_size(p) for p in layers) / 1024, 1),
            })
    return rows


BENCHMARK_NAMES = [*AUTOMATION_NAMES, "organization"]


def automation_benchmarks(only: list[str] | None = None) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for name in only or BENCHMARK_NAMES:
        if not (ROOT / "benchmarks" / f"{name}.py").exists():
            continue
        print(f"== benchmark {name}", flush=True)
        started = time.perf_counter()
        try:
            module = importlib.import_module(f"benchmarks.{name}")
            results[name] = module.run()
        except Exception as exc:
            traceback.print_exc()
            results[name] = {"error": f"{type(exc).__name__}: {exc}"}
        print(f"   done in {time.perf_counter() - started:.1f}s", flush=True)
    return results


def _table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "(none)\n"
    keys = list(rows[0])
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(str(row.get(k, "")) for k in keys) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _figures(value: Any, indent: str = "") -> str:
    if isinstance(value, dict):
        return "".join(
            f"{indent}- {key}:\n{_figures(item, indent + '  ')}" if isinstance(item, dict | list)
            else f"{indent}- {key}: {item}\n"
            for key, item in value.items()
        )
    if isinstance(value, list):
        return "".join(_figures(item, indent) if isinstance(item, dict | list) else f"{indent}- {item}\n"
                       for item in value)
    return f"{indent}- {value}\n"


def render(results: dict[str, Any], starts: list[dict[str, Any]], sizes: list[dict[str, Any]]) -> str:
    machine = f"{os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}"
    out = [
        "# Benchmark results\n",
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {machine}, by `make bench`. Every ratio compares "
        "against a baseline measured in the same run on the same machine.\n",
    ]
    for name, figures in results.items():
        out.append(f"\n## {name}\n\n{_figures(figures)}")
    out.append(f"\n## Cold start: handler import vs boto3 alone (median of {COLD_START_RUNS} fresh interpreters)\n\n")
    out.append(_table(starts))
    out.append("\n## Deployment size (zipped)\n\n")
    out.append(_table(sizes))
    return "".join(out)


def replace_sections(report: str, results: dict[str, Any]) -> str:
    """``report`` (a RESULTS.md) with the sections of ``results`` replaced (added before the cold starts when
    new); the measurement line of each says when and how it was measured."""
    machine = f"{os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}"
    for name, figures in results.items():
        section = (f"\n## {name}\n\n- measured: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {machine} with "
                   f"`python -m benchmarks {name}` alone (the other sections: the `make bench` run above)\n"
                   f"{_figures(figures)}")
        start = report.find(f"\n## {name}\n")
        if start < 0:
            start = end = report.find("\n## Cold start") if "\n## Cold start" in report else len(report)
        else:
            following = report.find("\n## ", start + 1)
            end = following if following >= 0 else len(report)
        report = report[:start] + section + report[end:]
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks")
    parser.add_argument("names", nargs="*", metavar="NAME",
                        help=f"run only these benchmarks ({', '.join(BENCHMARK_NAMES)})")
    parser.add_argument("--cdk-out", default="cdk.out.bench")
    parser.add_argument("--write", default="")
    parser.add_argument("--skip-automations", action="store_true", help="only cold starts and sizes")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.names) - set(BENCHMARK_NAMES))
    if unknown:
        parser.error(f"no benchmark named {', '.join(unknown)} (benchmarks: {', '.join(BENCHMARK_NAMES)})")
    if args.names:
        results = automation_benchmarks(args.names)
        print(_figures(results))
        if args.write:
            path = Path(args.write)
            path.write_text(replace_sections(path.read_text() if path.exists() else "# Benchmark results\n", results))
            print(f"wrote {args.write}")
        return 1 if any(isinstance(r, dict) and "error" in r for r in results.values()) else 0
    cdk_out = Path(args.cdk_out)
    if not any(cdk_out.glob("*.template.json")):
        print(f"error: no synthesized templates in {cdk_out} (make bench synthesizes them)", file=sys.stderr)
        return 2
    results = {} if args.skip_automations else automation_benchmarks()
    print("== cold starts", flush=True)
    starts = cold_starts(cdk_out)
    sizes = deployment_sizes(cdk_out)
    report = render(results, starts, sizes)
    print(report)
    if args.write:
        Path(args.write).write_text(report)
        print(f"wrote {args.write}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
