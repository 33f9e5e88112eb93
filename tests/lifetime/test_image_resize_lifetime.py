"""image_resize over a bucket's lifetime: five simulated hours (two days under ``make lifetime``).

What happens, seeded and replayable, every 10 simulated minutes:

- people upload camera files (EXIF-rotated JPEG/TIFF/PNG/WebP, MPO, 16-bit, colour-key PNG, animated GIF
  and WebP) and broken ones (every other format Pillow writes, empty and text files, a pixel bomb), overwrite
  keys with good or broken versions, delete keys, upload deleted keys again;
- each change reaches the function as the event S3 sends, through one of its three real triggers: an S3
  notification (asynchronous invocation: Lambda retries twice, then keeps an on-failure record), an SQS
  message of the queue trigger (partial batch responses; redelivered, then dead-lettered), or an EventBridge
  ``Object Created`` / ``Object Deleted`` event (asynchronous). Some events are delivered twice, and every
  step's events are delivered out of order;
- while the function works on a key, a person sometimes overwrites or deletes that very key (between the
  function's read and its write, or in the middle of its deletes), and the event of that change sometimes
  runs at once in a second, concurrent invocation that finishes before the first one writes;
- S3 throttling bursts (SlowDown 503) and internal errors on HeadObject, GetObject, PutObject and DeleteObject;
- an operator replays the kept events (on-failure records, dead letters) after the faults are over.

Invariants, after every step:

- every source has settled: its renditions are correct for its latest version (upright size in the box,
  one frame for a still, every frame for an animation, made from its current ETag), or its latest version
  was rejected (reported, no renditions left of the version it replaced); unless an event of that key is
  kept in a failure destination (then it settles once replayed);
- renditions belong to the latest version of their source, and nothing is left for a deleted source;
- only transient failures are retried: every failed invocation failed on an injected S3 fault (or on a key
  that kept changing under it); a broken file never reaches a failure destination;
- one summary report per invocation at most.
"""

from __future__ import annotations

import datetime as dt
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

import boto3
import pytest
from moto import mock_aws
from PIL import Image

from demo.harness import OpsTopicTap
from image_resize import imaging
from image_resize.planning import RenditionSpec
from stacks.settings.image_resize import ImageResizeSettings
from tests.functions.image_resize import corpus as C
from tests.functions.image_resize.conftest import eventbridge_event, pixel_bomb, s3_event
from tests.lifetime.kit import Fault, FaultInjector, LambdaRuntime, SimClock, Simulation, is_long

pytestmark = pytest.mark.lifetime

SEED = 1313
STEPS = 6 * 24 * 2 if is_long() else 30  # two days / five hours of 10-minute steps
MAX_SOURCES = 40  # people tidy up: past this many sources they delete rather than upload
START = dt.datetime(2026, 11, 2, 8, 0, tzinfo=dt.UTC)
BUCKET = "photos-lifetime"
REGION = "us-east-1"
RENDITIONS = [{"name": "large", "width": 160, "height": 160, "fit": "contain"},
              {"name": "thumb", "width": 48, "height": 48, "fit": "cover"}]
SPECS = [RenditionSpec("large", 160, 160, "contain"), RenditionSpec("thumb", 48, 48, "cover")]
OPERATIONS = ("s3.HeadObject", "s3.GetObject", "s3.PutObject", "s3.DeleteObject")
TRANSIENT = ({"code": "SlowDown", "status": 503, "message": "Please reduce your request rate."},
             {"code": "InternalError", "status": 500, "message": "We encountered an internal error."})


@dataclass(frozen=True)
class Version:
    """What a person uploaded (the test's own record, independent of the function)."""

    sample: C.Sample
    good: bool
    step: int


@dataclass
class World:
    s3: Any
    tap: OpsTopicTap
    runtime: LambdaRuntime
    faults: FaultInjector
    versions: dict[tuple[str, str], Version] = field(default_factory=dict)  # (key, ETag) -> what it is
    pending: list[tuple[str, str, str]] = field(default_factory=list)  # (action, key, etag) events to deliver
    rejected: dict[str, int] = field(default_factory=dict)  # key -> step of the last rejection report
    reports: int = 0
    invocations_acting: int = 0
    step: int = 0
    counts: dict[str, int] = field(default_factory=dict)

    def count(self, what: str) -> None:
        self.counts[what] = self.counts.get(what, 0) + 1


def good_pool() -> list[C.Sample]:
    wanted = {"orient-jpeg-6", "orient-jpeg-3", "orient-tiff-6", "orient-tiff-8", "orient-png-5", "orient-webp-7",
              "mpo-orient-6", "png-16bit", "png-rgb-trns", "gif-animated-first-opaque", "webp-animated", "jpeg-cmyk"}
    return [s for s in C.good_samples() if s.name in wanted]


def bad_pool() -> list[C.Sample]:
    bad = [s for s in C.other_formats() if s.source_format in ("BMP", "PDF", "ICO", "PPM", "QOI", "TGA")]
    return [*bad, C.Sample("empty", b"", "rejects"), C.Sample("text", b"meeting notes\n" * 20, "rejects"),
            C.Sample("bomb", pixel_bomb(9000, 9000), "rejects")]


# --------------------------------------------------------------------------- what the function must have made


def source_keys(world: World) -> dict[str, str]:
    listed = world.s3.list_objects_v2(Bucket=BUCKET, Prefix="uploads/").get("Contents", [])
    return {item["Key"]: item["ETag"].strip('"') for item in listed}


def renditions(world: World) -> dict[str, dict[str, str]]:
    """rendition key -> its metadata."""
    found = {}
    for page in world.s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix="resized/"):
        for item in page.get("Contents", []):
            found[item["Key"]] = world.s3.head_object(Bucket=BUCKET, Key=item["Key"])["Metadata"]
    return found


def kept_keys(world: World) -> set[str]:
    """Keys named by an event kept in a failure destination (not yet replayed)."""
    kept: set[str] = set()
    for record in world.runtime.failures:
        kept |= _event_keys(record.request)
    for letter in world.runtime.dead_letters:
        kept |= _event_keys(json.loads(letter["body"]))
    return kept


def _event_keys(event: dict[str, Any]) -> set[str]:
    if "detail" in event:
        return {event["detail"]["object"]["key"]}
    return {unquote(r["s3"]["object"]["key"].replace("+", " ")) for r in event.get("Records", [])}


def check_rendition(world: World, key: str, sample: C.Sample) -> list[str]:
    problems = []
    for spec in SPECS:
        out_key = f"resized/{spec.name}/{key.removeprefix('uploads/').rsplit('.', 1)[0]}.webp"
        image = Image.open(io.BytesIO(world.s3.get_object(Bucket=BUCKET, Key=out_key)["Body"].read()))
        target = imaging.fit_size(*sample.upright, spec)
        crop = target.crop
        size = (crop[2] - crop[0], crop[3] - crop[1]) if crop else target.size
        if image.size != size:
            problems.append(f"{out_key}: {image.size}, expected {size} for {sample.name}")
        if getattr(image, "n_frames", 1) != sample.frames:
            problems.append(f"{out_key}: {getattr(image, 'n_frames', 1)} frames, expected {sample.frames}")
    return problems


def settled(world: World) -> list[str]:
    """Every source's renditions match its latest version (or it was rejected), unless its event is kept."""
    problems = []
    made = renditions(world)
    kept = kept_keys(world)
    for key, etag in source_keys(world).items():
        if key in kept:
            continue
        version = world.versions[(key, etag)]
        mine = {k: m for k, m in made.items() if unquote(m.get("source-key", "")) == key}
        if not version.good:
            if mine:
                problems.append(f"{key}: broken latest version, but renditions are left: {sorted(mine)}")
            if world.rejected.get(key, -1) < version.step:
                problems.append(f"{key}: broken version of step {version.step} was not reported as rejected")
            continue
        if len(mine) != len(SPECS):
            problems.append(f"{key}: {len(mine)} renditions for its latest version, expected {len(SPECS)}")
            continue
        stale = [k for k, m in mine.items() if m.get("source-etag") != etag]
        if stale:
            problems.append(f"{key}: renditions {stale} were not made from the latest ETag {etag}")
            continue
        problems += check_rendition(world, key, version.sample)
    return problems


def nothing_orphaned(world: World) -> list[str]:
    """Every rendition's source exists and has the ETag it was made from (delete sync is on)."""
    sources = source_keys(world)
    kept = kept_keys(world)
    problems = []
    for out_key, metadata in renditions(world).items():
        source = unquote(metadata.get("source-key", ""))
        if source in kept:
            continue
        if source not in sources:
            problems.append(f"{out_key}: its source {source} was deleted")
        elif sources[source] != metadata.get("source-etag"):
            problems.append(f"{out_key}: made from {metadata.get('source-etag')}, the source is {sources[source]}")
    return problems


def only_transient_failures(world: World) -> list[str]:
    problems = []
    errors: list[BaseException] = []
    for invocation in world.runtime.invocations:
        if invocation.error is not None:
            # Powertools raises BatchProcessingError when every record of a batch failed: look at each record's.
            children = getattr(invocation.error, "child_exceptions", None)
            errors += [child[1] for child in children] if children else [invocation.error]
    for error in errors:
        name = type(error).__name__
        code = getattr(error, "response", {}).get("Error", {}).get("Code")
        if not (name == "SourceChanged" or (name == "ClientError" and code in {t["code"] for t in TRANSIENT})):
            problems.append(f"invocation failed on something else than an injected fault: {name}: {error}")
    return problems


# --------------------------------------------------------------------------- people, events, faults


def upload(world: World, key: str, sample: C.Sample, good: bool) -> None:
    etag = world.s3.put_object(Bucket=BUCKET, Key=key, Body=sample.data)["ETag"].strip('"')
    world.versions[(key, etag)] = Version(sample, good, world.step)
    world.pending.append(("created", key, etag))


def delete(world: World, key: str) -> None:
    world.s3.delete_object(Bucket=BUCKET, Key=key)
    world.pending.append(("removed", key, ""))


def people(sim: Simulation, world: World, good: list[C.Sample], bad: list[C.Sample], deleted: list[str]) -> None:
    rng = sim.rng
    existing = sorted(source_keys(world))
    for _ in range(rng.randint(1, 4)):
        roll = rng.random() if len(existing) < MAX_SOURCES else 0.7
        if roll < 0.35 or not existing:
            key = f"uploads/{rng.choice(['ana', 'ben', 'chen'])}/{world.step:04d}-{rng.randrange(100)}.jpg"
            is_good = rng.random() < 0.8
            upload(world, key, rng.choice(good if is_good else bad), is_good)
            world.count("uploads")
        elif roll < 0.6:
            is_good = rng.random() < 0.75
            upload(world, rng.choice(existing), rng.choice(good if is_good else bad), is_good)
            world.count("overwrites")
        elif roll < 0.8:
            key = rng.choice(existing)
            delete(world, key)
            deleted.append(key)
            world.count("deletes")
        elif deleted:
            upload(world, deleted.pop(rng.randrange(len(deleted))), rng.choice(good), True)
            world.count("re-uploads")
        existing = sorted(source_keys(world))


def meddler(sim: Simulation, world: World, good: list[C.Sample], bad: list[C.Sample]) -> Fault:
    """A person changing the very key the function is writing or deleting renditions of, mid-flight."""

    def when(params: dict[str, Any]) -> bool:
        key = str(params.get("Key", ""))
        if not key.startswith("resized/") or sim.rng.random() > 0.08:
            return False
        stem = key.split("/", 2)[2].rsplit(".", 1)[0]
        with world.faults.paused():
            candidates = [k for k in source_keys(world) if k.removeprefix("uploads/").rsplit(".", 1)[0] == stem]
            if not candidates:
                return False
            source = candidates[0]
            roll = sim.rng.random()
            if roll < 0.5:
                upload(world, source, sim.rng.choice(good), True)
            elif roll < 0.75:
                upload(world, source, sim.rng.choice(bad), False)
            else:
                delete(world, source)
            world.count("changes mid-flight")
            sim.note(f"a person changed {source} while the function worked on it")
            if sim.rng.random() < 0.5:
                # Lambda runs the new event's invocation at once, concurrently with the one in flight.
                action, key, etag = world.pending.pop()
                name = "ObjectCreated:Put" if action == "created" else "ObjectRemoved:Delete"
                world.runtime.invoke_async(s3_event(key, etag, 1, bucket=BUCKET, name=name))
                world.count("concurrent invocations")
        return False  # the call itself goes through

    return Fault("*", "NoFault", when=when)


def deliver(sim: Simulation, world: World) -> None:
    """Every pending event, out of order, some twice, each through one of the three triggers; then the events
    of what people changed while the function worked, until none is left."""
    while world.pending:
        deliver_pending(sim, world)
    read_reports(world)


def deliver_pending(sim: Simulation, world: World) -> None:
    rng = sim.rng
    events = list(world.pending)
    world.pending.clear()
    events += [e for e in events if rng.random() < 0.12]  # duplicates
    rng.shuffle(events)
    queued: list[str] = []
    for action, key, etag in events:
        route = rng.choice(["direct", "queue", "eventbridge"])
        name = "ObjectCreated:Put" if action == "created" else "ObjectRemoved:Delete"
        if route == "eventbridge":
            invoke(world, eventbridge_event(key, etag, 1, bucket=BUCKET, deleted=action == "removed"))
        elif route == "direct":
            invoke(world, s3_event(key, etag, 1, bucket=BUCKET, name=name))
        else:
            queued.append(json.dumps(s3_event(key, etag, 1, bucket=BUCKET, name=name)))
    if queued:
        with world.faults.active():
            world.runtime.deliver_sqs(queued, batch_size=5)


def invoke(world: World, event: dict[str, Any]) -> None:
    with world.faults.active():
        world.runtime.invoke_async(event)


def read_reports(world: World) -> None:
    for message in world.tap.messages():
        world.reports += 1
        reasons = message["metadata"]["additionalContext"].get("reasons")
        for key in json.loads(reasons) if reasons else {}:
            world.rejected[key] = world.step


def replay_kept(world: World) -> None:
    """The operator replays what the failure destinations kept (the runbook's procedure)."""
    failures, world.runtime.failures = world.runtime.failures, []
    letters, world.runtime.dead_letters = world.runtime.dead_letters, []
    for record in failures:
        world.runtime.invoke_async(record.request)
    if letters:
        world.runtime.deliver_sqs([letter["body"] for letter in letters], batch_size=5)
    if failures or letters:
        world.count("replays")
    read_reports(world)


def fault_burst(sim: Simulation, world: World, clock: SimClock) -> None:
    world.faults.clear()
    rng = sim.rng
    if rng.random() < 0.3:
        kind = rng.choice(TRANSIENT)
        operation = rng.choice(OPERATIONS)
        # sometimes fewer failures than Lambda's retries (absorbed), sometimes more (kept, then replayed)
        world.faults.add(Fault(operation, kind["code"], kind["message"], status=kind["status"],
                               times=rng.choice([1, 2, 4, 12]), start=clock.now,
                               end=clock.now + dt.timedelta(minutes=10)))
        sim.note(f"fault: {operation} -> {kind['code']}")
        world.count("fault bursts")


# --------------------------------------------------------------------------- the lifetime


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    settings = ImageResizeSettings(renditions=RENDITIONS, output_formats=["webp"], delete_renditions=True,
                                   max_pixels=5_000_000)
    with mock_aws(), FaultInjector() as faults:
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket=BUCKET)
        tap = OpsTopicTap(REGION)
        env = {**settings.function_environment(), "DEST_BUCKET": BUCKET, "NOTIFY_TOPIC_ARN": tap.topic_arn,
               "POWERTOOLS_SERVICE_NAME": "image_resize"}
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        from aws_lambda_powertools.utilities.batch.exceptions import BaseBatchProcessingError

        from image_resize.handler import handler

        def lambda_(event: dict[str, Any], context: Any) -> Any:
            try:
                return handler(event, context)
            except BaseBatchProcessingError as exc:
                # Every record failed: Powertools raises; keep a copy of each record's error (the batch
                # processor reuses its list for the next batch).
                exc.child_exceptions = list(exc.child_exceptions)
                raise

        yield World(s3=s3, tap=tap, runtime=LambdaRuntime(lambda_, function_name="opsauto-image-resize"),
                    faults=faults)


def test_a_buckets_lifetime(world: World) -> None:
    clock = SimClock(START)
    world.faults.clock = clock
    sim = Simulation(seed=SEED, clock=clock)
    good, bad = good_pool(), bad_pool()
    deleted: list[str] = []
    sim.invariant("every source settled on its latest version, or its event is kept")(lambda: settled(world))
    sim.invariant("renditions belong to the latest version; nothing left of a deleted source")(
        lambda: nothing_orphaned(world))
    sim.invariant("only transient failures are retried; broken files never")(lambda: only_transient_failures(world))
    sim.invariant("at most one report per invocation")(
        lambda: [] if world.reports <= len(world.runtime.invocations) else [f"{world.reports} reports"])

    for step in range(STEPS):
        world.step = step
        clock.advance(minutes=10)
        fault_burst(sim, world, clock)
        world.faults.add(meddler(sim, world, good, bad))
        sim.step("people act; events delivered", lambda: (people(sim, world, good, bad, deleted),
                                                          deliver(sim, world)))
        if step % 3 == 2 or step == STEPS - 1:
            world.faults.clear()
            sim.step("the operator replays kept events", lambda: replay_kept(world))

    world.faults.clear()
    replay_kept(world)
    sim.check("end")
    assert not kept_keys(world)
    summary = sim.summary()
    print(f"\nimage_resize lifetime: {STEPS} x 10 min, {summary['steps']} steps, {summary['invariant_checks']} "
          f"invariant checks, {len(world.runtime.invocations)} invocations, {world.reports} reports, "
          f"{len(world.versions)} versions; {world.counts}")
    assert world.counts.get("changes mid-flight", 0) > 0
    assert world.counts.get("fault bursts", 0) > 0
    assert world.reports > 0
