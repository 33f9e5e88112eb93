"""Orchestration: each object event -> decisions (planning) -> pixels (imaging) -> S3 (aws) -> outcomes.

An event only says *which key* to look at; what is done follows the key's state now, so duplicate and
out-of-order events (an old upload's event after an overwrite, a delete's event after a re-upload) give
the same result as the latest one:

- the source exists: its renditions are made from its current version (skipped when they already are);
- it does not, and delete sync is on: its renditions are deleted;
- otherwise the event is ignored, with its reason.

Writes and deletes are conditional on what was checked. When another invocation changed the source or a
rendition meanwhile, the key is looked at again (at most ``MAX_PASSES`` times, then ``SourceChanged`` is
raised and Lambda retries the event later).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from image_resize import events, imaging, planning
from image_resize.aws import ObjectHead, S3Store
from image_resize.config import Config
from image_resize.events import BadEvent, IgnoredEvent, ObjectEvent, Parsed
from image_resize.report import build_report
from shared.observability import MetricUnit, logger, metrics
from shared.reports import ReportPublisher

if TYPE_CHECKING:  # the batch utility costs ~40 ms of cold start: imported only for the queue trigger
    from aws_lambda_powertools.utilities.batch import BatchProcessor
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

Status = Literal["written", "deleted", "skipped", "ignored", "rejected"]
MAX_PASSES = 3


class SourceChanged(Exception):
    """The source or its renditions kept changing while this invocation worked on them: retry later."""


@dataclass(frozen=True)
class Written:
    key: str
    width: int
    height: int
    size: int


@dataclass(frozen=True)
class Todo:
    """A rendition to (re)make: its spec and format, its key, the ETag it has now (None: absent)."""

    spec: planning.RenditionSpec
    out_format: str
    out_key: str
    replaces: str | None


@dataclass
class Outcome:
    """What happened to one object: written, deleted, skipped (up to date), ignored or rejected."""

    status: Status
    bucket: str
    key: str
    reason: str = ""
    written: list[Written] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    source_etag: str = ""
    source_format: str = ""

    def as_result(self) -> dict[str, Any]:
        return {"key": self.key, "status": self.status, "reason": self.reason,
                "renditions": [w.key for w in self.written], "deleted": self.deleted}


class Resizer:
    """Acts on one object event at a time and keeps every outcome of the invocation."""

    def __init__(self, config: Config, store: S3Store) -> None:
        self.config = config
        self.store = store
        self.outcomes: list[Outcome] = []

    def handle(self, item: Parsed) -> Outcome:
        outcome = self._ignored_event(item) if isinstance(item, IgnoredEvent) else self._object(item)
        self.outcomes.append(outcome)
        return outcome

    def _object(self, event: ObjectEvent) -> Outcome:
        config = self.config
        skip = planning.check_key(event.key, event.bucket, source_prefix=config.source_prefix,
                                  dest_bucket=config.dest_bucket, dest_prefix=config.dest_prefix)
        if skip is not None:
            return self._ignored(event, event.key, skip.reason)
        if event.action == "removed" and not config.delete_renditions:
            return self._ignored(event, event.key, "DELETE_RENDITIONS is off: renditions are kept")
        for _ in range(MAX_PASSES):
            outcome = self._reconcile(event)
            if outcome is not None:
                return outcome
        raise SourceChanged(f"s3://{event.bucket}/{event.key} changed during {MAX_PASSES} passes; retried later")

    def _reconcile(self, event: ObjectEvent) -> Outcome | None:
        key = event.key
        head = self.store.head(event.bucket, key)
        if head is None and event.alternative_key:
            key = event.alternative_key
            head = self.store.head(event.bucket, key)
        if head is not None:
            return self._made(event, key, head)
        if self.config.delete_renditions:
            return self._removed(event)
        return self._ignored(event, event.key, "the object no longer exists (deleted after the event)")

    # -- the source exists -------------------------------------------------------------------------
    def _made(self, event: ObjectEvent, key: str, head: ObjectHead) -> Outcome | None:
        """Renditions of the source's current version; None when something changed meanwhile."""
        config = self.config
        if planning.is_rendition(head.metadata):
            return self._ignored(event, key, "the object carries the rendition metadata marker: ignored (no loop)")
        reason = planning.check_size(head.size, config.max_bytes)
        if reason:
            return self._rejected(event, key, head, reason)
        start = self.store.read_start(event.bucket, key, head.etag, imaging.SNIFF_BYTES)
        if start is None:
            return None
        source_format = imaging.sniff(start)
        if source_format is None:
            return self._rejected(event, key, head, imaging.describe_unknown(start))
        out_formats = list(dict.fromkeys(imaging.output_format(source_format, f) for f in config.output_formats))
        todo = self._stale_renditions(key, head, out_formats)
        if not todo:
            metrics.add_metric(name="RenditionsUpToDate", unit=MetricUnit.Count,
                               value=len(config.renditions) * len(out_formats))
            logger.info("renditions already made from this ETag", extra={"bucket": event.bucket, "key": key,
                                                                         "etag": head.etag})
            return Outcome(status="skipped", bucket=event.bucket, key=key, source_etag=head.etag,
                           reason=f"every rendition already carries ETag {head.etag}")
        return self._render(event, key, head, source_format, todo)

    def _stale_renditions(self, key: str, head: ObjectHead, out_formats: list[str]) -> list[Todo]:
        """Every (spec, format) rendition not made from ``head``, with its key and ETag (None when absent)."""
        config = self.config
        todo = []
        for spec in config.renditions:
            for out_format in out_formats:
                out_key = planning.output_key(key, spec.name, out_format, source_prefix=config.source_prefix,
                                              dest_prefix=config.dest_prefix)
                existing = self.store.head(config.dest_bucket, out_key)
                if not planning.is_up_to_date(existing.metadata if existing else None, head.etag):
                    todo.append(Todo(spec, out_format, out_key, existing.etag if existing else None))
        return todo

    def _render(self, event: ObjectEvent, key: str, head: ObjectHead, source_format: str,
                todo: list[Todo]) -> Outcome | None:
        """Decode once, encode every stale (spec, format), write each conditionally."""
        config = self.config
        data = self.store.read(event.bucket, key, head.etag)
        if data is None:
            return None
        specs = list({t.spec.name: t.spec for t in todo}.values())
        formats = list(dict.fromkeys(t.out_format for t in todo))
        try:
            rendered = imaging.render(data, specs, output=formats, quality=config.quality,
                                      max_pixels=config.max_pixels, metadata=config.metadata)
        except imaging.Rejected as exc:
            return self._rejected(event, key, head, exc.reason)
        del data
        by_target = {(r.name, r.format): r for r in rendered}
        outcome = Outcome(status="written", bucket=event.bucket, key=key, source_etag=head.etag,
                          source_format=source_format)
        for item in todo:
            image = by_target[(item.spec.name, item.out_format)]
            metadata = planning.rendition_metadata(key, head.etag, item.spec.name)
            if not self.store.write(config.dest_bucket, item.out_key, image.data, image.content_type, metadata,
                                    replaces=item.replaces):
                return None
            outcome.written.append(Written(item.out_key, image.width, image.height, len(image.data)))
        if not self._still(event.bucket, key, head.etag):
            return None
        metrics.add_metric(name="ImagesResized", unit=MetricUnit.Count, value=1)
        metrics.add_metric(name="RenditionsWritten", unit=MetricUnit.Count, value=len(outcome.written))
        metrics.add_metric(name="SourceBytes", unit=MetricUnit.Bytes, value=head.size)
        logger.info("renditions written", extra={"bucket": event.bucket, "key": key, "format": source_format,
                                                 "renditions": [w.key for w in outcome.written]})
        return outcome

    def _still(self, bucket: str, key: str, etag: str) -> bool:
        """The source still has ``etag`` (else a newer version or a delete raced this invocation)."""
        now = self.store.head(bucket, key)
        return now is not None and now.etag == etag

    # -- the source is gone ------------------------------------------------------------------------
    def _removed(self, event: ObjectEvent) -> Outcome | None:
        deleted = self._delete_renditions(event.key, keep_etag=None)
        if deleted is None or self.store.head(event.bucket, event.key) is not None:
            return None  # re-uploaded meanwhile: look again
        if not deleted:
            return self._ignored(event, event.key, "the source is gone and has no renditions (already deleted?)")
        metrics.add_metric(name="RenditionsDeleted", unit=MetricUnit.Count, value=len(deleted))
        logger.info("renditions deleted", extra={"bucket": event.bucket, "key": event.key, "renditions": deleted})
        return Outcome(status="deleted", bucket=event.bucket, key=event.key, deleted=deleted,
                       reason="the source was deleted")

    def _delete_renditions(self, key: str, keep_etag: str | None) -> list[str] | None:
        """Delete the renditions of ``key`` (except those made from ``keep_etag``); None when one changed."""
        config = self.config
        deleted: list[str] = []
        for spec in config.renditions:
            stem = planning.rendition_stem(key, spec.name, source_prefix=config.source_prefix,
                                           dest_prefix=config.dest_prefix)
            for candidate in list(self.store.keys(config.dest_bucket, stem)):
                if not planning.matches_stem(candidate, stem):
                    continue
                existing = self.store.head(config.dest_bucket, candidate)
                if existing is None or planning.metadata_source_key(existing.metadata) != key:
                    continue
                if keep_etag is not None and planning.is_up_to_date(existing.metadata, keep_etag):
                    continue
                if not self.store.delete(config.dest_bucket, candidate, existing.etag):
                    return None
                deleted.append(candidate)
        return deleted

    # -- outcomes ----------------------------------------------------------------------------------
    def _ignored_event(self, item: IgnoredEvent) -> Outcome:
        metrics.add_metric(name="EventsIgnored", unit=MetricUnit.Count, value=1)
        logger.info("event ignored", extra={"bucket": item.bucket, "key": item.key, "reason": item.reason,
                                            "origin": item.origin})
        return Outcome(status="ignored", bucket=item.bucket, key=item.key, reason=item.reason)

    def _ignored(self, event: ObjectEvent, key: str, reason: str) -> Outcome:
        metrics.add_metric(name="ImagesIgnored", unit=MetricUnit.Count, value=1)
        logger.info("object ignored", extra={"bucket": event.bucket, "key": key, "reason": reason,
                                             "action": event.action})
        return Outcome(status="ignored", bucket=event.bucket, key=key, reason=reason)

    def _rejected(self, event: ObjectEvent, key: str, head: ObjectHead, reason: str) -> Outcome:
        """A permanently bad version: counted, logged, reported, not retried. With delete sync on, the
        renditions of the version it replaced are deleted (they no longer show the source)."""
        deleted = self._delete_renditions(key, keep_etag=head.etag) if self.config.delete_renditions else []
        metrics.add_metric(name="ImagesRejected", unit=MetricUnit.Count, value=1)
        logger.warning("image rejected", extra={"bucket": event.bucket, "key": key, "reason": reason,
                                                "etag": head.etag, "stale_renditions_deleted": deleted or []})
        return Outcome(status="rejected", bucket=event.bucket, key=key, reason=reason, source_etag=head.etag,
                       deleted=deleted or [])


# --------------------------------------------------------------------------------------- invocations


@functools.cache
def _processor() -> BatchProcessor:
    from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType

    return BatchProcessor(event_type=EventType.SQS)


def _bad_event(reason: str) -> None:
    metrics.add_metric(name="BadEvents", unit=MetricUnit.Count, value=1)
    logger.warning("event not understood: not retried", extra={"reason": reason})


def _sqs_record(record: SQSRecord, resizer: Resizer) -> list[str]:
    try:
        parsed = events.parse_sqs_body(record.body)
    except BadEvent as exc:
        _bad_event(f"message {record.message_id}: {exc}")
        return []
    return [resizer.handle(item).status for item in parsed]


def _queue(event: Mapping[str, Any], context: Any, resizer: Resizer) -> dict[str, Any]:
    from aws_lambda_powertools.utilities.batch import process_partial_response

    record_handler: Callable[[SQSRecord], list[str]] = functools.partial(_sqs_record, resizer=resizer)
    response = process_partial_response(event=dict(event), record_handler=record_handler, processor=_processor(),
                                        context=context)
    return dict(response)


def _direct(event: Mapping[str, Any], resizer: Resizer) -> dict[str, Any]:
    try:
        parsed = events.parse(event)
    except BadEvent as exc:
        _bad_event(str(exc))
        return {"results": [], "error": str(exc)}
    return {"results": [resizer.handle(item).as_result() for item in parsed]}


def run(event: Mapping[str, Any], context: Any, config: Config, store: S3Store,
        publisher: ReportPublisher) -> dict[str, Any]:
    """One invocation: every object of the event handled, then one summary action report of what was done.

    When an object fails (a transient S3 error), what was done before it is still reported, then the error
    is raised for Lambda's retry (direct and EventBridge triggers); the queue trigger reports the failed
    messages in ``batchItemFailures`` instead.
    """
    resizer = Resizer(config, store)
    try:
        return _queue(event, context, resizer) if events.kind(event) == "sqs" else _direct(event, resizer)
    finally:
        report = build_report(resizer.outcomes, dest_bucket=config.dest_bucket)
        if report is not None:
            publisher.publish(report)
