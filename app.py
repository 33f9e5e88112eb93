#!/usr/bin/env python3
"""CDK entry point: validated settings -> core stack + each enabled automation's stack, checked by cdk-nag.

    cdk synth                         # core stack only (every automation is off by default)
    cdk synth -c enable=alerts        # switch automations on without editing cdk.json
    cdk deploy -c enable=all --all
"""

from __future__ import annotations

import os
import sys

# Node 20 still runs the CDK fine; keep jsii's end-of-life banner off the synth output.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")

from aws_cdk import App, Environment

from stacks.assembly import build
from stacks.settings import AUTOMATION_NAMES, SettingsError


def main() -> int:
    app = App()
    env = None
    if os.environ.get("CDK_DEFAULT_ACCOUNT"):
        env = Environment(account=os.environ["CDK_DEFAULT_ACCOUNT"], region=os.environ.get("CDK_DEFAULT_REGION"))
    try:
        assembly = build(enable=app.node.try_get_context("enable"), app=app, env=env)
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if not assembly.stacks:
        print(
            "note: no automation is enabled; synthesizing the core stack alone. Enable some with "
            "-c enable=<names> or enable=all, or 'enabled: true' in cdk.json. "
            f"Automations: {', '.join(AUTOMATION_NAMES)}",
            file=sys.stderr,
        )
    app.synth()
    return 0


if __name__ == "__main__":
    sys.exit(main())
