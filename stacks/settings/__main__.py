"""``python -m stacks.settings [--write]``: print (or write into cdk.json) the default settings."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from stacks.settings import defaults

CDK_JSON = Path(__file__).resolve().parents[2] / "cdk.json"


def main(argv: list[str]) -> int:
    values = defaults()
    if "--write" in argv:
        document = json.loads(CDK_JSON.read_text())
        context = document.setdefault("context", {})
        context["project"] = {k: v for k, v in values.items() if k != "automations"}
        context["automations"] = values["automations"]
        CDK_JSON.write_text(json.dumps(document, indent=2) + "\n")
        print(f"wrote defaults into {CDK_JSON}")
    else:
        print(json.dumps(values, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
