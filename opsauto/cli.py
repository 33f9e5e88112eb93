"""``opsauto``: status, kept events, replay and preview of the automations, from the command line.

    opsauto status [--json]                        every automation: deployed, mode, activity, kept, alarms
    opsauto kept AUTOMATION [--json]               what its failure queues hold (credentials masked)
    opsauto replay AUTOMATION [--dry-run] [--limit N]
    opsauto preview AUTOMATION [--event FILE]      a report-mode run against your account; changes nothing

Exit codes: 0 fine; 1 something needs attention (status: kept events or a firing alarm; replay: a record
could not be replayed); 2 the command could not run (credentials, unknown automation, stack not deployed).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from opsauto import commands, render
from opsauto.project import OpsautoError, load_project

# Subcommands that live in their own modules and take their own arguments (mounted when present).
MOUNTED = {"schedules": "opsauto.schedules", "keys": "opsauto.keys"}


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="opsauto", description=__doc__.splitlines()[0],
                                  formatter_class=argparse.RawDescriptionHelpFormatter,
                                  epilog="\n".join(__doc__.splitlines()[2:]))
    top.add_argument("--region", help="AWS region (default: the current profile's / AWS_REGION)")
    top.add_argument("--profile", help="AWS profile (default: the standard credential chain)")
    top.add_argument("--project-dir", type=Path, help="the app's folder with cdk.json (default: found upwards)")
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("status", help="deployed, mode, last run, errors, kept events, alarms of every automation")
    p.add_argument("--json", action="store_true", help="machine-readable output")

    p = sub.add_parser("kept", help="list what an automation's failure queues hold")
    p.add_argument("automation")
    p.add_argument("--json", action="store_true")
    p.add_argument("--limit", type=_positive, default=100, help="at most this many (default 100)")

    p = sub.add_parser("replay", help="send kept events back to the function, deleting each once accepted")
    p.add_argument("automation")
    p.add_argument("--dry-run", action="store_true", help="say what would be replayed; send nothing")
    p.add_argument("--limit", type=_positive, default=10, help="at most this many (default 10)")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("preview", help="run an automation in report mode against your account (changes nothing)")
    p.add_argument("automation")
    p.add_argument("--event", type=Path, help="JSON file with the event (default: a scheduled event, now)")
    p.add_argument("--enable", help="also switch on these automations for the synth (as -c enable=...)")

    for name, module in MOUNTED.items():
        if importlib.util.find_spec(module) is not None:
            p = sub.add_parser(name, help=f"{name} commands (opsauto {name} --help)", add_help=False)
            p.add_argument("args", nargs=argparse.REMAINDER)
    return top


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return _run(args)
    except OpsautoError as exc:
        print(f"opsauto: error: {exc}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    if args.command in MOUNTED:
        module = importlib.import_module(MOUNTED[args.command])
        rest = list(args.args)
        for option, value in (("--region", args.region), ("--profile", args.profile),
                              ("--project-dir", args.project_dir)):
            if value is not None and rest and not rest[0].startswith("-"):
                rest += [option, str(value)]
        return int(module.main(rest))
    if args.command == "preview":
        from opsauto.preview import PreviewError, run_preview_command

        try:
            return run_preview_command(args.automation, args.event, args.enable, args.project_dir)
        except PreviewError as exc:
            raise OpsautoError(str(exc)) from None
    project = load_project(args.project_dir)
    if args.command in ("kept", "replay"):
        project.automation(args.automation)  # an unknown name fails before any AWS call
    aws = _aws(args)
    try:
        return _dispatch(args, project, aws)
    except commands.AWS_ERRORS as exc:
        raise OpsautoError(f"AWS: {exc}") from None


def _aws(args: argparse.Namespace) -> commands.Aws:
    import boto3
    from botocore.exceptions import ProfileNotFound

    try:
        session = boto3.Session(profile_name=args.profile, region_name=args.region)
    except ProfileNotFound as exc:
        raise OpsautoError(str(exc)) from None
    return commands.Aws(session)


def _dispatch(args: argparse.Namespace, project: commands.Project, aws: commands.Aws) -> int:
    if args.command == "status":
        data = commands.status(project, aws)
        print(render.as_json(data) if args.json else render.status_text(data))
        return 1 if data["unhealthy"] else 0
    if args.command == "kept":
        items = [k.public() for k in commands.kept(project, aws, args.automation, args.limit)]
        print(render.as_json(items) if args.json else render.kept_text(args.automation, items))
        return 0
    results = commands.replay(project, aws, args.automation, dry_run=args.dry_run, limit=args.limit)
    rows = [{**r.kept.public(), "outcome": r.outcome, "detail": r.detail} for r in results]
    print(json.dumps(rows, indent=2, default=str) if args.json else render.replay_text(args.automation, rows,
                                                                                      args.dry_run))
    return 1 if any(r.outcome in ("failed", "refused") for r in results) else 0
