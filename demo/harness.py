"""The demo harness: runs each automation end-to-end against an embedded AWS (moto, in process).

The function code is loaded from the synthesized CDK asset (what ``cdk deploy`` would ship), with the
environment variables the template gives the function; CloudFormation references in that environment
are filled in by the scenario with the names of resources it created in moto. A local HTTPS receiver on
127.0.0.1 stands in for Slack and Teams (and for any endpoint a scenario needs), trusted through a CA
bundle the harness makes (REQUESTS_CA_BUNDLE / SSL_CERT_FILE).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
import threading
import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from unittest import mock

import boto3

from demo.fakes import FakeContext, LocalHttpsServer

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_REGION = "eu-central-1"
ACCOUNT = "123456789012"
DEMO_REQUEST_ID = "00000000-0000-4000-8000-000000000000"


class DemoFailure(AssertionError):
    """A scenario did not do what it should."""


# --------------------------------------------------------------------------- synthesized app


@dataclass(frozen=True)
class FunctionSpec:
    automation: str
    logical_id: str
    asset_dir: Path
    environment: dict[str, Any]
    handler: str


def read_functions(cdk_out: Path) -> dict[str, list[FunctionSpec]]:
    """Every Lambda function of the synthesized templates, by automation (POWERTOOLS_SERVICE_NAME)."""
    found: dict[str, list[FunctionSpec]] = {}
    for template_path in sorted(cdk_out.glob("*.template.json")):
        template = json.loads(template_path.read_text())
        for logical_id, resource in template.get("Resources", {}).items():
            if resource.get("Type") != "AWS::Lambda::Function":
                continue
            props = resource.get("Properties", {})
            env = props.get("Environment", {}).get("Variables", {})
            automation = env.get("POWERTOOLS_SERVICE_NAME")
            asset = resource.get("Metadata", {}).get("aws:asset:path")
            if not isinstance(automation, str) or not asset:
                continue  # CDK's own helper functions (custom resources) are not automations
            found.setdefault(automation, []).append(
                FunctionSpec(automation, logical_id, cdk_out / asset, dict(env), props.get("Handler", ""))
            )
    return found


# --------------------------------------------------------------------------- local HTTPS receiver


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body.decode() or "null")


@dataclass
class Route:
    status: int = 200
    body: bytes = b"ok"
    content_type: str = "text/plain"
    delay_seconds: float = 0.0


class WebhookReceiver:
    """An HTTPS server on 127.0.0.1 with a CA of its own. Records every request; answers per route."""

    def __init__(self, workdir: Path) -> None:
        self.received: list[Received] = []
        self.routes: dict[str, Route] = {}
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                path = self.path.split("?", 1)[0]
                receiver.received.append(Received(self.command, path, dict(self.headers), body))
                route = receiver.routes.get(path, Route())
                if route.delay_seconds:
                    threading.Event().wait(route.delay_seconds)
                self.send_response(route.status)
                self.send_header("Content-Type", route.content_type)
                self.send_header("Content-Length", str(len(route.body)))
                self.end_headers()
                self.wfile.write(route.body)

            do_GET = do_POST = do_PUT = do_HEAD = _serve

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = LocalHttpsServer(Handler, workdir / "demo-ca.pem")
        self.ca_path = self._server.ca_path
        self.url = self._server.url

    def route(self, path: str, status: int = 200, body: bytes | str = b"ok", content_type: str = "text/plain",
              delay_seconds: float = 0.0) -> str:
        """Answer ``path`` with ``status`` and ``body``; returns the full URL."""
        data = body.encode() if isinstance(body, str) else body
        self.routes[path] = Route(status, data, content_type, delay_seconds)
        return self.url + path

    def bodies(self, path: str) -> list[Any]:
        return [item.json() for item in self.received if item.path == path and item.body]

    def close(self) -> None:
        self._server.close()


# --------------------------------------------------------------------------- the context a scenario gets


def lambda_context(automation: str) -> FakeContext:
    """The Lambda context the demo and the preview pass to ``automation``'s handler."""
    return FakeContext(f"opsauto-{automation}", region=DEFAULT_REGION, request_id=DEMO_REQUEST_ID)


_ASSET_MODULE_ROOTS = ("handler", "shared")

# Wraps every invocation: (context, automation, environment) -> a context manager yielding environment
# variables to add (the tests run each function under its synthesized role this way: tests/iam).
AroundInvoke = Callable[["DemoContext", str, dict[str, str]], contextlib.AbstractContextManager[dict[str, str]]]


@dataclass
class DemoContext:
    automation: str
    functions: dict[str, list[FunctionSpec]]
    webhook: WebhookReceiver
    out_dir: Path
    ops_topic: OpsTopicTap
    region: str = DEFAULT_REGION
    lines: list[str] = field(default_factory=list)
    _loaded: dict[str, Path] = field(default_factory=dict)
    _reports: list[dict[str, Any]] = field(default_factory=list)
    verbose: bool = True
    around_invoke: AroundInvoke | None = None
    _log_file: Any = None

    # -- AWS
    def client(self, service: str, region: str | None = None) -> Any:
        session: Any = boto3  # any service by name: the typed overloads of boto3.client want a literal
        return session.client(service, region_name=region or self.region)

    # -- output
    def say(self, line: str) -> None:
        self.lines.append(line)
        if self.verbose:
            print(f"    {line}", flush=True)

    # -- the function under demo
    def spec(self, automation: str | None = None) -> FunctionSpec:
        name = automation or self.automation
        specs = self.functions.get(name)
        if not specs:
            raise DemoFailure(f"no synthesized function for {name}: was the app synthesized with enable=all?")
        return specs[0]

    def function_env(self, automation: str | None = None, **overrides: str) -> dict[str, str]:
        """The function's environment from the template; CloudFormation references must be overridden."""
        spec = self.spec(automation)
        env: dict[str, str] = {}
        missing = []
        for key, value in spec.environment.items():
            if key in overrides:
                continue
            if isinstance(value, str):
                env[key] = value
            elif key == "NOTIFY_TOPIC_ARN":
                env[key] = self.ops_topic.topic_arn
            elif isinstance(value, dict) and value.get("Ref") in (pseudo := {
                    "AWS::Region": self.region, "AWS::AccountId": ACCOUNT, "AWS::Partition": "aws"}):
                env[key] = pseudo[value["Ref"]]
            else:
                missing.append(f"{key} ({json.dumps(value)[:80]})")
        if missing:
            raise DemoFailure(f"{spec.automation}: give these environment variables (CloudFormation references): "
                              + ", ".join(missing))
        env.update({key: str(value) for key, value in overrides.items()})
        return env

    def module(self, name: str) -> types.ModuleType:
        """A module of the loaded asset (e.g. ``shared.clients``); loads the function first if needed."""
        self._load(self.automation)
        return sys.modules[name]

    def _load(self, automation: str, env: dict[str, str] | None = None) -> types.ModuleType:
        asset = self.spec(automation).asset_dir
        loaded = str(getattr(sys.modules.get("handler"), "__file__", "") or "")
        if self._loaded.get(automation) != asset or not loaded.startswith(str(asset)):  # another asset's handler
            _purge_modules(automation)
            sys.path.insert(0, str(asset))
            try:
                import_env = env if env is not None else {"POWERTOOLS_SERVICE_NAME": automation}
                with _patched_env(import_env), self._capture(automation):
                    import handler  # noqa: F401
            finally:
                sys.path.remove(str(asset))
            # The asset's own package must be importable afterwards (lazy imports inside the function).
            self._loaded[automation] = asset
        return sys.modules["handler"]

    def invoke(self, automation: str | None, event: Any, env: dict[str, str] | None = None) -> Any:
        """Run ``handler.handler(event, context)`` from the synthesized asset with ``env`` set."""
        name = automation or self.automation
        environment = env if env is not None else self.function_env(name)
        module = self._load(name, environment)
        asset = self.spec(name).asset_dir
        around = self.around_invoke(self, name, environment) if self.around_invoke else contextlib.nullcontext({})
        sys.path.insert(0, str(asset))
        try:
            with around as extra, _patched_env({**environment, **extra}), self._capture(name):
                return module.handler(event, lambda_context(name))
        finally:
            sys.path.remove(str(asset))

    @contextlib.contextmanager
    def _capture(self, automation: str) -> Iterator[None]:
        """The function's logs and metrics go to demo-output/<automation>/function.log, not the screen.

        One file object per scenario: Powertools' logger keeps the stream it saw at import.
        """
        if self._log_file is None:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            self._log_file = (self.out_dir / "function.log").open("a")
        with contextlib.redirect_stdout(self._log_file), contextlib.redirect_stderr(self._log_file):
            yield
        self._log_file.flush()

    def close(self) -> None:
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    # -- action reports published to the ops topic
    def reports(self) -> list[dict[str, Any]]:
        """Action reports published to the ops topic so far in this scenario."""
        self._reports.extend(self.ops_topic.messages())
        return list(self._reports)


def _purge_modules(*automations: str) -> dict[str, types.ModuleType]:
    """Forget the modules an asset provides (so the asset's own copies load); returns what was forgotten."""
    roots = (*_ASSET_MODULE_ROOTS, *automations)
    removed = {}
    for name in list(sys.modules):
        if name.split(".", 1)[0] in roots:
            removed[name] = sys.modules.pop(name)
    return removed


@contextlib.contextmanager
def _patched_env(env: dict[str, str]) -> Iterator[None]:
    with mock.patch.dict(os.environ, env):
        yield


# --------------------------------------------------------------------------- running scenarios


class OpsTopicTap:
    """An SNS topic with an SQS queue subscribed (raw delivery), to read back what was published to it.

    Stands in for the ops notifications topic in the demo and in the function tests.
    """

    def __init__(self, region: str, name: str = "opsauto-ops") -> None:
        self._sqs = boto3.client("sqs", region_name=region)
        sns = boto3.client("sns", region_name=region)
        self.topic_arn: str = sns.create_topic(Name=name)["TopicArn"]
        self.queue_url: str = self._sqs.create_queue(QueueName=f"{name}-tap")["QueueUrl"]
        attributes = self._sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])
        sns.subscribe(TopicArn=self.topic_arn, Protocol="sqs", Endpoint=attributes["Attributes"]["QueueArn"],
                      Attributes={"RawMessageDelivery": "true"})

    def messages(self) -> list[dict[str, Any]]:
        """The JSON messages published since the last call (each read once)."""
        found: list[dict[str, Any]] = []
        while True:
            response = self._sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10)
            if not response.get("Messages"):
                return found
            for message in response["Messages"]:
                found.append(json.loads(message["Body"]))
                self._sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])


def sqs_records(queue_url: str, region: str | None = None) -> list[dict[str, Any]]:
    """Every message on the queue (received and deleted) as the records an SQS event source mapping hands the
    function (one delivery each), in queue order."""
    sqs = boto3.client("sqs", region_name=region)
    arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    records: list[dict[str, Any]] = []
    while True:
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
        if not messages:
            return records
        for message in messages:
            records.append({
                "messageId": message["MessageId"], "receiptHandle": message["ReceiptHandle"],
                "body": message["Body"], "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "0",
                                                        "SenderId": "AIDAEXAMPLE",
                                                        "ApproximateFirstReceiveTimestamp": "0"},
                "messageAttributes": {}, "md5OfBody": message["MD5OfBody"], "eventSource": "aws:sqs",
                "eventSourceARN": arn, "awsRegion": arn.split(":")[3],
            })
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])


@contextlib.contextmanager
def embedded_aws(region: str = DEFAULT_REGION) -> Iterator[OpsTopicTap]:
    """moto in process with fake credentials; yields the ops topic (with a queue to read it)."""
    from moto import mock_aws

    fake = {
        "AWS_ACCESS_KEY_ID": "demo",
        "AWS_SECRET_ACCESS_KEY": "demo",
        "AWS_SESSION_TOKEN": "demo",
        "AWS_DEFAULT_REGION": region,
        "AWS_REGION": region,
        "POWERTOOLS_TRACE_DISABLED": "1",
        "POWERTOOLS_METRICS_NAMESPACE": "opsauto-demo",
    }
    with mock.patch.dict(os.environ, fake), mock_aws():
        os.environ.pop("AWS_PROFILE", None)
        yield OpsTopicTap(region)


@contextlib.contextmanager
def demo_context(automation: str, cdk_out: Path, out_root: Path, verbose: bool = True,
                 uses: tuple[str, ...] = (), around_invoke: AroundInvoke | None = None) -> Iterator[DemoContext]:
    """Everything one scenario needs: a fresh embedded AWS, the receiver, the synthesized functions.

    ``automation`` names the scenario (and its output folder); ``uses`` the other automations whose functions
    it invokes (a scenario spanning several). ``around_invoke`` wraps every invocation (tests/iam runs each
    function under its synthesized role this way).
    """
    functions = read_functions(cdk_out)
    # The asset's modules replace same-named ones (functions/ in tests) only for this scenario.
    saved = _purge_modules(automation, *uses)
    with tempfile.TemporaryDirectory(prefix="opsauto-demo-") as workdir:
        receiver = WebhookReceiver(Path(workdir))
        ca = {"REQUESTS_CA_BUNDLE": str(receiver.ca_path), "SSL_CERT_FILE": str(receiver.ca_path)}
        try:
            with embedded_aws() as tap, mock.patch.dict(os.environ, ca):
                out_dir = out_root / automation
                if out_dir.exists():
                    for old in out_dir.iterdir():
                        if old.is_file():
                            old.unlink()
                context = DemoContext(automation, functions, receiver, out_dir, tap, verbose=verbose,
                                      around_invoke=around_invoke)
                try:
                    yield context
                finally:
                    context.close()
        finally:
            receiver.close()
            _purge_modules(automation, *uses)
            sys.modules.update(saved)
