"""Events the function does not act on, and the one summary action report per invocation."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from image_resize.handler import handler
from tests.conftest import emf_metrics, load_event
from tests.functions.image_resize.conftest import (
    Sandbox,
    jpeg,
    s3_event,
    sqs_event,
)

IGNORED = {
    "eventbridge_object_restore_completed.json": "Object Restore Completed",
    "eventbridge_object_storage_class_changed.json": "Object Storage Class Changed",
    "s3_object_restore_completed.json": "ObjectRestore:Completed",
    "s3_lifecycle_transition.json": "LifecycleTransition",
}


@pytest.mark.parametrize("fixture", sorted(IGNORED))
@pytest.mark.parametrize("via_queue", [False, True])
def test_events_not_acted_on_are_logged_with_a_reason_and_counted(
    fixture: str, via_queue: bool, sandbox: Sandbox, lambda_context: Any, capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    etag = sandbox.put("uploads/2026/My Photo.JPG", jpeg())
    event = load_event(f"image_resize/{fixture}")
    capsys.readouterr()
    result = handler(sqs_event(event) if via_queue else event, lambda_context)
    if via_queue:
        assert result == {"batchItemFailures": []}
    else:
        (item,) = result["results"]
        assert item["status"] == "ignored"
        assert IGNORED[fixture] in item["reason"]
    out = capsys.readouterr().out
    (line,) = [r for r in caplog.records if r.getMessage() == "event ignored"]
    assert IGNORED[fixture] in line.reason  # type: ignore[attr-defined]
    assert line.key == "uploads/2026/My Photo.JPG"  # type: ignore[attr-defined]
    assert emf_metrics(out)["EventsIgnored"] == 1
    assert sandbox.keys("resized/") == []
    assert sandbox.reports() == []
    assert etag


def test_s3_test_event_is_logged_and_counted(sandbox: Sandbox, lambda_context: Any,
                                             capsys: pytest.CaptureFixture[str],
                                             caplog: pytest.LogCaptureFixture) -> None:
    body = json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent", "Time": "2026-11-28T08:00:00.000Z",
                       "Bucket": "photos-example", "RequestId": "5582815E1AEA5ADF", "HostId": "8cLeGAmw098X5cv4Zkw"})
    capsys.readouterr()
    assert handler(sqs_event(body), lambda_context) == {"batchItemFailures": []}
    out = capsys.readouterr().out
    assert [getattr(r, "reason", "") for r in caplog.records if r.getMessage() == "event ignored"] == [
        "s3:TestEvent: S3 checks that it may deliver to this destination; nothing to resize"]
    assert emf_metrics(out)["EventsIgnored"] == 1


def test_a_batch_publishes_one_summary_report(sandbox: Sandbox, lambda_context: Any) -> None:
    bodies = []
    for index in range(6):
        key = f"uploads/batch/{index}.jpg"
        bodies.append(s3_event(key, sandbox.put(key, jpeg())))
    bad = sandbox.put("uploads/batch/notes.jpg", b"not a picture at all")
    bodies.append(s3_event("uploads/batch/notes.jpg", bad))
    response = handler(sqs_event(*bodies), lambda_context)
    assert response == {"batchItemFailures": []}
    (report,) = sandbox.reports()
    assert report["content"]["title"] == "Resized 6 images, rejected 1"
    assert report["metadata"]["additionalContext"]["severity"] == "warning"
    description = report["content"]["description"]
    assert all(f"uploads/batch/{i}.jpg" in description for i in range(6))
    assert "uploads/batch/notes.jpg" in description and "unrecognised magic bytes" in description
    assert report["metadata"]["eventType"] == "ImagesProcessed"
    sources = [f"arn:aws:s3:::photos-example/uploads/batch/{i}.jpg" for i in range(6)]
    notes = "arn:aws:s3:::photos-example/uploads/batch/notes.jpg"
    assert report["metadata"]["relatedResources"][:7] == [*sources, notes]
    # The same batch again: everything is up to date, the rejection is the only thing to say.
    handler(sqs_event(*bodies), lambda_context)
    (again,) = sandbox.reports()
    assert again["content"]["title"] == "Rejected uploads/batch/notes.jpg"


def test_one_object_keeps_its_own_title_and_info_severity(sandbox: Sandbox, lambda_context: Any) -> None:
    etag = sandbox.put("uploads/one.jpg", jpeg())
    handler(s3_event("uploads/one.jpg", etag), lambda_context)
    (report,) = sandbox.reports()
    assert report["content"]["title"] == "Resized uploads/one.jpg"
    assert report["metadata"]["eventType"] == "ImageResized"
    assert report["metadata"]["additionalContext"]["severity"] == "info"


def test_nothing_done_publishes_nothing(sandbox: Sandbox, lambda_context: Any) -> None:
    event = copy.deepcopy(load_event("image_resize/s3_lifecycle_transition.json"))
    handler(event, lambda_context)
    assert sandbox.reports() == []
