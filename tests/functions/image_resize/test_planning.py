"""Pure decisions and event parsing: keys, loops, idempotency markers, the three event shapes."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from image_resize import events, planning
from tests.conftest import load_event


@pytest.mark.parametrize(
    ("key", "fmt", "expected"),
    [
        ("uploads/2026/My Photo.JPG", "WEBP", "resized/thumb/2026/My Photo.webp"),
        ("uploads/2026/My Photo.JPG", "JPEG", "resized/thumb/2026/My Photo.JPG"),
        ("uploads/a.jpeg", "JPEG", "resized/thumb/a.jpeg"),
        ("uploads/scan.tiff", "PNG", "resized/thumb/scan.png"),
        ("uploads/no-extension", "PNG", "resized/thumb/no-extension.png"),
        ("uploads/dir.v2/photo", "GIF", "resized/thumb/dir.v2/photo.gif"),
        ("uploads/ünï cødé/фото.png", "AVIF", "resized/thumb/ünï cødé/фото.avif"),
    ],
)
def test_output_key(key: str, fmt: str, expected: str) -> None:
    assert planning.output_key(key, "thumb", fmt, source_prefix="uploads/", dest_prefix="resized/") == expected


def test_rendition_stem_and_matching() -> None:
    stem = planning.rendition_stem("uploads/2026/My Photo.JPG", "thumb", source_prefix="uploads/",
                                   dest_prefix="resized/")
    assert stem == "resized/thumb/2026/My Photo"
    assert planning.matches_stem("resized/thumb/2026/My Photo.webp", stem)
    assert planning.matches_stem("resized/thumb/2026/My Photo", stem)
    assert not planning.matches_stem("resized/thumb/2026/My Photo 2.webp", stem)
    assert not planning.matches_stem("resized/thumb/2026/My Photo.old.webp", stem)
    assert not planning.matches_stem("resized/thumb/2026/My Photo/x.webp", stem)


@pytest.mark.parametrize(
    ("key", "bucket", "reason"),
    [
        ("resized/thumb/a.jpg", "b", "destination prefix"),
        ("other/a.jpg", "b", "outside the source prefix"),
        ("uploads/folder/", "b", "folder marker"),
    ],
)
def test_check_key_skips(key: str, bucket: str, reason: str) -> None:
    skip = planning.check_key(key, bucket, source_prefix="uploads/", dest_bucket="b", dest_prefix="resized/")
    assert skip is not None and reason in skip.reason


def test_check_key_accepts_source_images_and_dest_prefix_of_another_bucket() -> None:
    assert planning.check_key("uploads/a.jpg", "b", source_prefix="uploads/", dest_bucket="b",
                              dest_prefix="resized/") is None
    # Renditions go to another bucket: the same prefix in the source bucket is not a loop.
    assert planning.check_key("uploads/resized/a.jpg", "src", source_prefix="uploads/", dest_bucket="dst",
                              dest_prefix="uploads/resized/") is None


def test_metadata_marker_round_trip_for_unicode_keys() -> None:
    key = "uploads/ünï cødé/фото+1.png"
    metadata = planning.rendition_metadata(key, '"abc"', "thumb")
    assert all(value.isascii() for value in metadata.values())
    assert metadata["source-etag"] == "abc"
    assert planning.metadata_source_key(metadata) == key
    assert planning.is_rendition(metadata)
    assert planning.is_up_to_date(metadata, "abc")
    assert not planning.is_up_to_date(metadata, "def")
    assert not planning.is_up_to_date(None, "abc")
    assert not planning.is_rendition({"other": "x"})


def test_check_size() -> None:
    assert planning.check_size(0, 10) == "the object is empty (zero bytes)"
    assert "over the limit" in (planning.check_size(11, 10) or "")
    assert planning.check_size(10, 10) is None


@settings(max_examples=100, deadline=None)
@given(rel=st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=40),
       fmt=st.sampled_from(["JPEG", "PNG", "WEBP", "GIF", "AVIF"]))
def test_output_keys_stay_under_the_destination_prefix(rel: str, fmt: str) -> None:
    key = "uploads/" + rel
    out = planning.output_key(key, "thumb", fmt, source_prefix="uploads/", dest_prefix="resized/")
    assert out.startswith("resized/thumb/")
    assert out.lower().endswith(planning.EXTENSIONS[fmt])
    stem = planning.rendition_stem(key, "thumb", source_prefix="uploads/", dest_prefix="resized/")
    assert planning.matches_stem(out, stem)


# ------------------------------------------------------------------------------------------ events


def test_s3_notification_key_is_url_decoded() -> None:
    (parsed,) = events.parse(load_event("image_resize/s3_object_created_put.json"))
    assert parsed.action == "created"
    assert parsed.key == "uploads/2026/My Photo.JPG"
    assert parsed.bucket == "photos-example"
    assert parsed.etag == "d41d8cd98f00b204e9800998ecf8427e"
    assert parsed.size == 1024


def test_s3_removed_notification() -> None:
    (parsed,) = events.parse(load_event("image_resize/s3_object_removed_delete.json"))
    assert parsed.action == "removed"
    assert parsed.key == "uploads/2026/My Photo.JPG"


def test_sqs_wrapped_notification_and_test_event() -> None:
    event = load_event("image_resize/sqs_s3_notification.json")
    assert events.kind(event) == "sqs"
    (parsed,) = events.parse_sqs_body(event["Records"][0]["body"])
    assert (parsed.key, parsed.origin) == ("uploads/2026/My Photo.JPG", "sqs")
    test_event = load_event("image_resize/sqs_s3_test_event.json")
    (ignored,) = events.parse_sqs_body(test_event["Records"][0]["body"])
    assert isinstance(ignored, events.IgnoredEvent) and "s3:TestEvent" in ignored.reason
    with pytest.raises(events.BadEvent):
        events.parse_sqs_body("not json")
    with pytest.raises(events.BadEvent):
        events.parse_sqs_body(json.dumps({"hello": "world"}))


def test_eventbridge_created_and_deleted() -> None:
    (created,) = events.parse(load_event("image_resize/eventbridge_object_created.json"))
    assert (created.action, created.key, created.origin) == ("created", "uploads/2026/My Photo.JPG", "eventbridge")
    assert created.alternative_key is None
    (deleted,) = events.parse(load_event("image_resize/eventbridge_object_deleted.json"))
    assert deleted.action == "removed"


def test_eventbridge_encoded_key_gets_a_decoded_alternative() -> None:
    event = load_event("image_resize/eventbridge_object_created.json")
    event["detail"]["object"]["key"] = "uploads/My+Photo.jpg"
    (parsed,) = events.parse(event)
    assert parsed.key == "uploads/My+Photo.jpg"
    assert parsed.alternative_key == "uploads/My Photo.jpg"


def test_unknown_event_shape() -> None:
    assert events.kind({"foo": 1}) == "unknown"
    with pytest.raises(events.BadEvent):
        events.parse({"foo": 1})
