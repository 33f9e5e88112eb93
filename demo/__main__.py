"""``python -m demo``: every automation end-to-end against an embedded AWS, then a summary table.

    python -m demo --cdk-out cdk.out.demo            # after `cdk synth -c enable=all -o cdk.out.demo`
    python -m demo --only alerts,image_resize
Exits non-zero when any scenario fails.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

from demo.harness import ROOT, AroundInvoke, demo_context
from stacks.settings import AUTOMATION_NAMES


@dataclass
class Outcome:
    automation: str
    scenario: str
    ok: bool
    summary: str
    seconds: float


# Scenarios that span several automations (their module's USES names them).
CROSS_SCENARIOS = ("organization",)


def available() -> list[str]:
    return [name for name in (*AUTOMATION_NAMES, *CROSS_SCENARIOS)
            if (ROOT / "demo" / "scenarios" / f"{name}.py").exists()]


def run_scenario(name: str, cdk_out: Path, out_root: Path, verbose: bool = True,
                 around_invoke: AroundInvoke | None = None) -> Outcome:
    module = importlib.import_module(f"demo.scenarios.{name}")
    title = getattr(module, "TITLE", name)
    started = time.perf_counter()
    try:
        with demo_context(name, cdk_out, out_root, verbose=verbose, uses=tuple(getattr(module, "USES", ())),
                          around_invoke=around_invoke) as ctx:
            summary = str(module.run(ctx))
        ok = True
    except Exception as exc:  # a failed scenario is reported, and the others still run
        summary = f"FAILED: {type(exc).__name__}: {exc}"
        if verbose:
            traceback.print_exc()
        ok = False
    return Outcome(name, title, ok, summary, time.perf_counter() - started)


def table(outcomes: list[Outcome]) -> str:
    rows = [("automation", "scenario", "result", "time")]
    rows += [(o.automation, o.scenario, ("ok: " if o.ok else "") + o.summary, f"{o.seconds:.1f}s") for o in outcomes]
    widths = [min(max(len(row[i]) for row in rows), 70) for i in range(4)]
    lines = []
    for index, row in enumerate(rows):
        cells = [cell if len(cell) <= widths[i] else cell[: widths[i] - 1] + "…" for i, cell in enumerate(row)]
        lines.append("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(cells)).rstrip())
        if index == 0:
            lines.append("  ".join("-" * width for width in widths))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m demo", description=__doc__.splitlines()[0])
    parser.add_argument("--cdk-out", default="cdk.out.demo", help="synthesized cloud assembly (enable=all)")
    parser.add_argument("--out", default="demo-output", help="where scenarios write files to open")
    parser.add_argument("--only", default="", help="comma list of automations")
    args = parser.parse_args(argv)
    cdk_out = Path(args.cdk_out)
    if not any(cdk_out.glob("*.template.json")):
        print(f"error: no synthesized templates in {cdk_out}; run `make demo` (it synthesizes first)", file=sys.stderr)
        return 2
    names = [n for n in args.only.split(",") if n] or available()
    outcomes = []
    for name in names:
        print(f"\n== {name}", flush=True)
        outcomes.append(run_scenario(name, cdk_out, Path(args.out)))
    print("\n" + table(outcomes))
    failed = [o.automation for o in outcomes if not o.ok]
    missing = [n for n in AUTOMATION_NAMES if n not in names]
    if missing and not args.only:
        print(f"\n(no demo scenario yet for: {', '.join(missing)})")
    print(f"\n{len(outcomes) - len(failed)} of {len(outcomes)} scenarios passed; files in {args.out}/")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
