"""Entry point of image_resize: S3 notifications, SQS batches of them, and EventBridge S3 events.

handler -> events (parse) -> planning (decide) -> imaging (pixels) -> aws (S3) -> action report (SNS).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from image_resize import aws, events, imaging, planning
from image_resize.events import BadEvent, ObjectEvent
from shared.config import ConfigError, env_bool, env_choice, env_int, env_json, env_str
from shared.observability import MetricUnit, logger, metrics, tracer
from shared.reports import ActionReport, ReportPublisher

if TYPE_CHECKING:  # the batch utility costs ~40 ms of cold start: imported only for the queue trigger
    from aws_lambda_powertools.utilities.batch import BatchProcessor
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

AUTOMATION = "image_resize"


@dataclass(frozen=True)
class Config:
    """The function's settings, read from its environment once per invocation."""

    dest_bucket: str
    source_prefix: str
    dest_prefix: str
    renditions: tuple[planning.RenditionSpec, ...]
    output_format: str
    quality: int
    max_pixels: int
    max_bytes: int
    delete_renditions: bool
    topic_arn: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Config:
        try:
            renditions = planning.parse_renditions(env_json("RENDITIONS", env=env))
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        source_prefix = env_str("SOURCE_PREFIX", "uploads/", env=env)
        dest_prefix = env_str("DEST_PREFIX", "resized/", env=env)
        if not source_prefix.endswith("/") or (dest_prefix and not dest_prefix.endswith("/")):
            raise ConfigError("SOURCE_PREFIX and DEST_PREFIX must end with '/'")
        topic = env_str("NOTIFY_TOPIC_ARN", "-", env=env)
        return cls(
            dest_bucket=env_str("DEST_BUCKET", env=env),
            source_prefix=source_prefix,
            dest_prefix=dest_prefix,
            renditions=renditions,
            output_format=env_choice("OUTPUT_FORMAT", planning.OUTPUT_FORMATS, "original", env=env),
            quality=env_int("QUALITY", 85, minimum=1, maximum=100, env=env),
            max_pixels=env_int("MAX_PIXELS", 50_000_000, minimum=1, env=env),
            max_bytes=env_int("MAX_BYTES", 50 * 1024 * 1024, minimum=1, env=env),
            delete_renditions=env_bool("DELETE_RENDITIONS", False, env=env),
            topic_arn=None if topic == "-" else topic,
        )


@dataclass
class Outcome:
    """What happened to one object: written, deleted, skipped (up to date), ignored or rejected."""

    status: str
    bucket: str
    key: str
    reason: str = ""
    written: list[tuple[str, int, int, int]] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)


class Resizer:
    """Acts on one object event at a time."""

    def __init__(self, config: Config, store: aws.S3Store, publisher: ReportPublisher) -> None:
        self.config = config
        self.store = store
        self.publisher = publisher

    def handle(self, event: ObjectEvent) -> Outcome:
        config = self.config
        skip = planning.check_key(event.key, event.bucket, source_prefix=config.source_prefix,
                                  dest_bucket=config.dest_bucket, dest_prefix=config.dest_prefix)
        if skip is not None:
            return self._ignored(event, skip.reason)
        if event.action == "removed":
            return self._removed(event)
        return self._created(event)

    # -- created -----------------------------------------------------------------------------------
    def _created(self, event: ObjectEvent) -> Outcome:
        config = self.config
        key = event.key
        head = self.store.head(event.bucket, key)
        if head is None and event.alternative_key:
            key = event.alternative_key
            head = self.store.head(event.bucket, key)
        if head is None:
            return self._ignored(event, "the object no longer exists (deleted after the event)")
        if planning.is_rendition(head.metadata):
            return self._ignored(event, "the object carries the rendition metadata marker: ignored to avoid a loop")
        reason = planning.check_size(head.size, config.max_bytes)
        if reason:
            return self._rejected(event, key, reason)
        start = self.store.read_start(event.bucket, key, head.etag, imaging.SNIFF_BYTES)
        if start is None:
            return self._ignored(event, "the object changed or vanished while being read; a newer event follows")
        source_format = imaging.sniff(start)
        if source_format is None:
            return self._rejected(event, key, imaging.describe_unknown(start))
        out_format = imaging.output_format(source_format, config.output_format)
        todo: list[tuple[planning.RenditionSpec, str]] = []
        for spec in config.renditions:
            out_key = planning.output_key(key, spec.name, out_format, source_prefix=config.source_prefix,
                                          dest_prefix=config.dest_prefix)
            existing = self.store.head(config.dest_bucket, out_key)
            if not planning.is_up_to_date(existing.metadata if existing else None, head.etag):
                todo.append((spec, out_key))
        if not todo:
            metrics.add_metric(name="RenditionsUpToDate", unit=MetricUnit.Count, value=len(config.renditions))
            logger.info("renditions already made from this ETag", extra={"bucket": event.bucket, "key": key,
                                                                         "etag": head.etag})
            return Outcome(status="skipped", bucket=event.bucket, key=key,
                           reason=f"every rendition already carries ETag {head.etag}")
        data = self.store.read(event.bucket, key, head.etag)
        if data is None:
            return self._ignored(event, "the object changed or vanished while being read; a newer event follows")
        try:
            rendered = imaging.render(data, [spec for spec, _ in todo], output=config.output_format,
                                      quality=config.quality, max_pixels=config.max_pixels)
        except imaging.Rejected as exc:
            return self._rejected(event, key, exc.reason)
        del data
        outcome = Outcome(status="written", bucket=event.bucket, key=key)
        for (spec, out_key), image in zip(todo, rendered, strict=True):
            self.store.write(config.dest_bucket, out_key, image.data, image.content_type,
                             planning.rendition_metadata(key, head.etag, spec.name))
            outcome.written.append((out_key, image.width, image.height, len(image.data)))
        metrics.add_metric(name="ImagesResized", unit=MetricUnit.Count, value=1)
        metrics.add_metric(name="RenditionsWritten", unit=MetricUnit.Count, value=len(outcome.written))
        metrics.add_metric(name="SourceBytes", unit=MetricUnit.Bytes, value=head.size)
        logger.info("renditions written", extra={"bucket": event.bucket, "key": key, "format": source_format,
                                                 "renditions": [w[0] for w in outcome.written]})
        self._report(
            ActionReport(
                automation=AUTOMATION, mode="enforce",
                title=f"Resized {key}",
                description=planning.summarise(key, outcome.written),
                event_type="ImageResized",
                summary=f"{len(outcome.written)} rendition(s) of s3://{event.bucket}/{key}",
                keywords=["s3", "image"],
                related_resources=[f"arn:aws:s3:::{event.bucket}/{key}"]
                + [f"arn:aws:s3:::{config.dest_bucket}/{w[0]}" for w in outcome.written],
                context={"sourceEtag": head.etag, "sourceFormat": source_format, "outputFormat": out_format},
            )
        )
        return outcome

    # -- removed -----------------------------------------------------------------------------------
    def _removed(self, event: ObjectEvent) -> Outcome:
        config = self.config
        if not config.delete_renditions:
            return self._ignored(event, "DELETE_RENDITIONS is off: renditions are kept")
        if self.store.head(event.bucket, event.key) is not None:
            return self._ignored(event, "the source exists again (re-uploaded after the delete): renditions kept")
        outcome = Outcome(status="deleted", bucket=event.bucket, key=event.key)
        for spec in config.renditions:
            stem = planning.rendition_stem(event.key, spec.name, source_prefix=config.source_prefix,
                                           dest_prefix=config.dest_prefix)
            for candidate in list(self.store.keys(config.dest_bucket, stem)):
                if not planning.matches_stem(candidate, stem):
                    continue
                existing = self.store.head(config.dest_bucket, candidate)
                if existing is None or planning.metadata_source_key(existing.metadata) != event.key:
                    continue
                self.store.delete(config.dest_bucket, candidate)
                outcome.deleted.append(candidate)
        if not outcome.deleted:
            return self._ignored(event, "the deleted source has no renditions (already deleted?)")
        metrics.add_metric(name="RenditionsDeleted", unit=MetricUnit.Count, value=len(outcome.deleted))
        logger.info("renditions deleted", extra={"bucket": event.bucket, "key": event.key,
                                                 "renditions": outcome.deleted})
        self._report(
            ActionReport(
                automation=AUTOMATION, mode="enforce",
                title=f"Deleted the renditions of {event.key}",
                description=f"The source `{event.key}` was deleted, so were its renditions:\n"
                + "\n".join(f"- `{k}`" for k in outcome.deleted),
                event_type="RenditionsDeleted",
                summary=f"{len(outcome.deleted)} rendition(s) of s3://{event.bucket}/{event.key} deleted",
                keywords=["s3", "image"],
                related_resources=[f"arn:aws:s3:::{config.dest_bucket}/{k}" for k in outcome.deleted],
            )
        )
        return outcome

    # -- outcomes ----------------------------------------------------------------------------------
    def _ignored(self, event: ObjectEvent, reason: str) -> Outcome:
        metrics.add_metric(name="ImagesIgnored", unit=MetricUnit.Count, value=1)
        logger.info("object ignored", extra={"bucket": event.bucket, "key": event.key, "reason": reason,
                                             "action": event.action})
        return Outcome(status="ignored", bucket=event.bucket, key=event.key, reason=reason)

    def _rejected(self, event: ObjectEvent, key: str, reason: str) -> Outcome:
        metrics.add_metric(name="ImagesRejected", unit=MetricUnit.Count, value=1)
        logger.warning("image rejected", extra={"bucket": event.bucket, "key": key, "reason": reason})
        self._report(
            ActionReport(
                automation=AUTOMATION, mode="enforce",
                title=f"Rejected {key}",
                description=f"`s3://{event.bucket}/{key}` was not resized: {reason}. It will not be retried.",
                event_type="ImageRejected",
                severity="warning",
                summary=f"s3://{event.bucket}/{key} rejected: {reason}"[:250],
                next_steps=["Check the uploaded file; upload a valid JPEG, PNG, GIF, WebP, TIFF or AVIF image "
                            "within MAX_BYTES and MAX_PIXELS to the same key to try again."],
                keywords=["s3", "image", "rejected"],
                related_resources=[f"arn:aws:s3:::{event.bucket}/{key}"],
                context={"reason": reason},
            )
        )
        return Outcome(status="rejected", bucket=event.bucket, key=key, reason=reason)

    def _report(self, report: ActionReport) -> None:
        self.publisher.publish(report)


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


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    config = Config.from_env()
    resizer = Resizer(config, aws.S3Store(), ReportPublisher(aws.sns_client(), config.topic_arn))
    event_kind = events.kind(event)
    if event_kind == "sqs":
        from aws_lambda_powertools.utilities.batch import process_partial_response

        response = process_partial_response(
            event=event,
            record_handler=functools.partial(_sqs_record, resizer=resizer),
            processor=_processor(),
            context=context,
        )
        return dict(response)
    try:
        parsed = events.parse(event)
    except BadEvent as exc:
        _bad_event(str(exc))
        return {"results": [], "error": str(exc)}
    outcomes = [resizer.handle(item) for item in parsed]
    return {
        "results": [
            {"key": o.key, "status": o.status, "reason": o.reason, "renditions": [w[0] for w in o.written],
             "deleted": o.deleted}
            for o in outcomes
        ]
    }
