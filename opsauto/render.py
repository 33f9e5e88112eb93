"""Plain-text tables for people; ``--json`` output is the commands' data as is."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [max([len(h), *(len(r[i]) for r in cells)]) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells]
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return ", ".join(map(str, value)) if value else "-"
    return str(value)


def as_json(data: Any) -> str:
    return json.dumps(data, indent=2, default=str, sort_keys=False)


def status_text(data: dict[str, Any]) -> str:
    rows = []
    for r in data["automations"]:
        last = f"{r['last_invocation']} {r['last_result']}" if r["last_invocation"] else None
        rows.append([r["automation"], r["enabled"], r["stack_status"] or "not deployed", r["mode"], last,
                     r["errors_24h"], r["kept"], r["alarms_firing"]])
    out = [f"region {data['region']}, prefix {data['prefix']}", "",
           table(["automation", "enabled", "stack", "mode", "last invocation", "errors 24h", "kept", "alarms firing"],
                 rows)]
    dashboards = [("overview", url) for url in data.get("overview", [])]
    dashboards += [(r["automation"], url) for r in data["automations"] for url in r["dashboards"]]
    if dashboards:
        out += ["", "dashboards:"] + [f"  {name}: {url}" for name, url in dashboards]
    if data["unhealthy"]:
        out += ["", f"attention: {', '.join(data['unhealthy'])} (kept events or firing alarms; "
                    "see `opsauto kept <automation>` and docs/runbook.md)"]
    return "\n".join(out)


def kept_text(name: str, items: Sequence[dict[str, Any]]) -> str:
    if not items:
        return f"{name}: nothing kept"
    rows = [[i["time"], i["kind"], i["event"], _fields(i["fields"]), i["reason"]] for i in items]
    return f"{name}: {len(items)} kept\n\n" + table(["time", "kind", "event", "key fields", "reason"], rows)


def _fields(fields: dict[str, Any]) -> str:
    text = ", ".join(f"{k}={_cell(v)}" for k, v in fields.items() if v not in (None, "", [], {}))
    return text if len(text) <= 100 else text[:97] + "..."


def replay_text(name: str, results: Sequence[dict[str, Any]], dry_run: bool) -> str:
    if not results:
        return f"{name}: nothing kept, nothing to replay"
    rows = [[r["time"], r["event"], r["outcome"], r["detail"]] for r in results]
    head = f"{name}: {'dry run, nothing sent' if dry_run else 'replay'}"
    return head + "\n\n" + table(["time", "event", "outcome", "detail"], rows)
