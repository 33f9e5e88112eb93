"""``opsauto preview AUTOMATION [--event FILE]`` (or ``make preview``): what an automation would do in your account.

Runs the automation's handler locally, in ``report`` mode, against the AWS account of the current
credentials (the standard boto3 chain: environment, profile, SSO ...), and prints the action report it
would publish. It changes nothing, and that is enforced, not just asked: ``MODE=report`` is set, and every
AWS call that is not a read (Describe*, List*, Get*, Head*, Lookup*, ...) is refused before it is sent.

The function's settings are the ones ``cdk synth`` gives it (cdk.json + ``-c`` overrides through ENABLE),
so the preview matches what a deploy would run.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from unittest import mock

ROOT = Path(__file__).resolve().parents[1]
READ_PREFIXES = ("Describe", "List", "Get", "Head", "Lookup", "Search", "BatchGet")

# Automations that have a report mode, and the event a preview sends by default.
PREVIEWABLE: dict[str, str] = {
    "ec2_scheduler": "scheduled",
    "sg_remediation": "scheduled",
    "key_rotation": "scheduled",
}


class PreviewError(Exception):
    """A preview cannot run; the message is one line for the user."""


class WriteBlocked(RuntimeError):
    """The handler tried an AWS call that is not a read; the preview refused to send it."""


def scheduled_event(now: datetime | None = None) -> dict[str, Any]:
    """A scheduled EventBridge event ("Scheduled Event" from aws.events), as the sweeps receive it."""
    moment = (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "version": "0",
        "id": "00000000-0000-4000-8000-000000000000",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "000000000000",
        "time": moment,
        "region": os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1",
        "resources": [],
        "detail": {},
    }


def check_credentials() -> None:
    import boto3

    session = boto3.session.Session()
    if session.get_credentials() is None:
        raise PreviewError(
            "no AWS credentials found (standard chain: AWS_PROFILE / AWS_ACCESS_KEY_ID / ~/.aws / SSO); "
            "log in first, e.g. `aws sso login --profile <name>` and AWS_PROFILE=<name> make preview ..."
        )
    if not session.region_name:
        raise PreviewError("no AWS region configured: set AWS_REGION (or a region in your profile)")


def function_environment(automation: str, context: dict[str, Any], enable: str | None) -> dict[str, str]:
    """The function's environment from an in-process synth. CloudFormation references are dropped, except
    topics the stack makes (``*_TOPIC_ARN``): they get a placeholder, since a preview publishes nothing."""
    import tempfile

    from aws_cdk import App

    from demo.harness import read_functions
    from stacks.assembly import build

    with tempfile.TemporaryDirectory(prefix="opsauto-preview-") as outdir:
        app = App(outdir=outdir, context={"aws:cdk:enable-asset-metadata": True})
        build(context, ",".join(filter(None, [enable, automation])), app=app, nag=False)
        app.synth()
        specs = read_functions(Path(outdir)).get(automation)
        if not specs:
            raise PreviewError(f"{automation}: no function in the synthesized app")
        env = {key: value for key, value in specs[0].environment.items() if isinstance(value, str)}
        for key in specs[0].environment:
            if key not in env and key.endswith("_TOPIC_ARN"):
                env[key] = f"arn:aws:sns:preview:000000000000:{key.lower().replace('_', '-')}-not-published"
        return env


@contextmanager
def reads_only(log: Callable[[str], None]) -> Iterator[list[str]]:
    """Refuse every botocore call whose operation is not a read; yields the list of calls made."""
    from botocore.client import BaseClient

    original = BaseClient._make_api_call  # type: ignore[attr-defined]
    calls: list[str] = []

    def guarded(self: Any, operation_name: str, api_params: dict[str, Any]) -> Any:
        service = self.meta.service_model.service_name
        calls.append(f"{service}:{operation_name}")
        if not operation_name.startswith(READ_PREFIXES):
            log(f"preview: refused {service}:{operation_name} (not a read)")
            raise WriteBlocked(f"preview refused {service}:{operation_name}: previews change nothing")
        return original(self, operation_name, api_params)

    with mock.patch.object(BaseClient, "_make_api_call", guarded):
        yield calls


def run_preview(
    automation: str,
    event: Any | None = None,
    *,
    context: dict[str, Any] | None = None,
    enable: str | None = None,
    extra_env: dict[str, str] | None = None,
    out: Callable[[str], None] = print,
) -> list[dict[str, Any]]:
    """Run ``automation``'s handler in report mode; returns (and prints) the action reports."""
    if automation not in PREVIEWABLE:
        raise PreviewError(
            f"{automation!r} cannot be previewed: previews run automations that have a report mode "
            f"({', '.join(PREVIEWABLE)})"
        )
    check_credentials()
    if context is None:
        context = json.loads((ROOT / "cdk.json").read_text())["context"]
    env = function_environment(automation, context, enable)
    env.update(extra_env or {})
    env["MODE"] = "report"
    env["NOTIFY_TOPIC_ARN"] = "arn:aws:sns:preview:000000000000:not-published"
    env.setdefault("POWERTOOLS_TRACE_DISABLED", "1")
    if event is None:
        event = scheduled_event()

    from shared import reports

    published: list[dict[str, Any]] = []

    def capture(self: reports.ReportPublisher, report: reports.ActionReport) -> str:
        published.append(report.to_message())
        return "preview"

    with mock.patch.dict(os.environ, env), mock.patch.object(reports.ReportPublisher, "publish", capture):
        import importlib

        handler = importlib.import_module(f"{automation}.handler")
        from demo.harness import lambda_context

        with reads_only(lambda line: print(line, file=sys.stderr)) as calls:
            result = handler.handler(event, lambda_context(automation))
    out(f"{automation}: preview in report mode ({len(calls)} read calls, nothing changed)")
    if not published:
        out("no action report: nothing to change")
    for message in published:
        out(json.dumps(message, indent=2))
    if result is not None and not published:
        out(json.dumps(result, indent=2, default=str))
    return published


def run_preview_command(automation: str, event_file: Path | None, enable: str | None,
                        project_dir: Path | None = None) -> int:
    """``opsauto preview``: read the event file and the app's cdk.json, run the preview, print it."""
    try:
        event = json.loads(event_file.read_text()) if event_file else None
    except (OSError, json.JSONDecodeError) as exc:
        raise PreviewError(f"event file: {exc}") from None
    context = None
    if project_dir is not None:
        try:
            context = json.loads((project_dir / "cdk.json").read_text())["context"]
        except (OSError, ValueError, KeyError) as exc:
            raise PreviewError(f"{project_dir / 'cdk.json'}: {exc}") from None
    run_preview(automation, event, context=context, enable=enable)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="opsauto preview", description=__doc__.splitlines()[0])
    parser.add_argument("automation")
    parser.add_argument("--event", type=Path, help="JSON file with the event to send (default: a scheduled event, now)")
    parser.add_argument("--enable", default=None)
    args = parser.parse_args(argv)
    try:
        return run_preview_command(args.automation, args.event, args.enable)
    except PreviewError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
