"""image_resize stack: notification filters, bucket policies, the role's scope, the queue trigger, settings."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from aws_cdk.assertions import Match, Template

from stacks.image_resize_stack import notification_suffixes
from stacks.settings import SettingsError, load_settings
from tests.stacks.helpers import build_with, nag_errors, policy_statements, template

pytestmark = pytest.mark.synth


@pytest.fixture(scope="module")
def direct() -> tuple[Any, Template]:
    """Defaults: the stack creates the source bucket; S3 invokes the function directly."""
    assembly = build_with("image_resize", {})
    stack = assembly.stacks["image_resize"]
    return stack, template(stack)


@pytest.fixture(scope="module")
def queued() -> tuple[Any, Template]:
    """Imported buckets, SQS trigger, renditions deleted with their source, WebP output."""
    assembly = build_with("image_resize", {
        "source_bucket_name": "my-photos",
        "dest_bucket_name": "my-renditions",
        "source_prefix": "incoming/",
        "dest_prefix": "web/",
        "trigger": "queue",
        "delete_renditions": True,
        "output_formats": ["webp"],
        "quality": 70,
    })
    stack = assembly.stacks["image_resize"]
    return stack, template(stack)


def _statements(tpl: Template, policy_prefix: str = "ImageAccess") -> list[dict[str, Any]]:
    return policy_statements(tpl, policy_prefix)


def _notifications(tpl: Template) -> dict[str, Any]:
    (resource,) = tpl.find_resources("Custom::S3BucketNotifications").values()
    return dict(resource["Properties"]["NotificationConfiguration"])


def _rules(config: dict[str, Any]) -> list[dict[str, str]]:
    return [{r["Name"]: r["Value"] for r in c["Filter"]["Key"]["FilterRules"]} for c in config]


def test_direct_notification_filters_prefix_and_every_suffix_case(direct: tuple[Any, Template]) -> None:
    config = _notifications(direct[1])
    lambdas = config["LambdaFunctionConfigurations"]
    assert {tuple(c["Events"]) for c in lambdas} == {("s3:ObjectCreated:*",)}
    rules = _rules(lambdas)
    assert all(rule["prefix"] == "uploads/" for rule in rules)
    suffixes = sorted(rule["suffix"] for rule in rules)
    assert suffixes == sorted(notification_suffixes())
    assert {".jpg", ".JPG", ".jpeg", ".JPEG", ".png", ".PNG", ".gif", ".webp", ".tif", ".tiff", ".avif"} <= set(
        suffixes)
    assert "QueueConfigurations" not in config


def test_function_environment(direct: tuple[Any, Template]) -> None:
    tpl = direct[1]
    functions = tpl.find_resources("AWS::Lambda::Function", {"Properties": {"Handler": "handler.handler"}})
    (function,) = functions.values()
    env = function["Properties"]["Environment"]["Variables"]
    assert env["SOURCE_PREFIX"] == "uploads/"
    assert env["DEST_PREFIX"] == "resized/"
    assert list(env["DEST_BUCKET"]) == ["Ref"] and env["DEST_BUCKET"]["Ref"].startswith("SourceBucket")
    assert json.loads(env["RENDITIONS"])[0] == {"name": "large", "width": 2048, "height": 2048, "fit": "contain"}
    assert (env["OUTPUT_FORMATS"], env["QUALITY"], env["MAX_PIXELS"], env["DELETE_RENDITIONS"]) == (
        "original", "85", "50000000", "false")
    assert env["MAX_BYTES"] == str(50 * 1024 * 1024)
    assert function["Properties"]["MemorySize"] == 1024


def test_source_bucket_blocks_public_access_is_encrypted_and_logged(direct: tuple[Any, Template]) -> None:
    tpl = direct[1]
    tpl.has_resource_properties("AWS::S3::Bucket", {
        "PublicAccessBlockConfiguration": {"BlockPublicAcls": True, "BlockPublicPolicy": True,
                                           "IgnorePublicAcls": True, "RestrictPublicBuckets": True},
        "BucketEncryption": {"ServerSideEncryptionConfiguration": [
            {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]},
        "LoggingConfiguration": {"DestinationBucketName": Match.any_value(), "LogFilePrefix": "source-bucket/"},
    })
    policies = tpl.find_resources("AWS::S3::BucketPolicy")
    assert len(policies) == 2  # source bucket and its access-log bucket
    for policy in policies.values():
        statements = policy["Properties"]["PolicyDocument"]["Statement"]
        assert any(s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
                   for s in statements)


def test_role_reads_source_prefix_and_writes_dest_prefix_only(direct: tuple[Any, Template]) -> None:
    statements = {s["Sid"]: s for s in _statements(direct[1])}
    read = statements["ReadSourcePrefix"]
    assert read["Action"] == "s3:GetObject"
    assert read["Resource"]["Fn::Join"][1][1] == "/uploads/*"
    write = statements["WriteDestPrefix"]
    assert sorted(write["Action"]) == ["s3:GetObject", "s3:PutObject"]  # no delete unless delete_renditions
    assert write["Resource"]["Fn::Join"][1][1] == "/resized/*"
    assert statements["ListBuckets"]["Action"] == "s3:ListBucket"
    # No statement of the function's role grants S3 on "*" or a whole bucket's objects.
    for statement in _statements(direct[1], "Resize"):
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        if any(a.startswith("s3:") for a in actions):
            pytest.fail(f"unexpected S3 statement {statement}")


def test_direct_nag_clean(direct: tuple[Any, Template]) -> None:
    assert nag_errors(direct[0]) == []


def test_queue_trigger_encrypted_ssl_only_with_dlq_and_partial_batch(queued: tuple[Any, Template]) -> None:
    tpl = queued[1]
    tpl.has_resource_properties("AWS::Lambda::EventSourceMapping", {
        "FunctionResponseTypes": ["ReportBatchItemFailures"],
        "BatchSize": 5,
        "EventSourceArn": {"Fn::GetAtt": [Match.string_like_regexp("^ImageEvents"), "Arn"]},
    })
    tpl.has_resource_properties("AWS::SQS::Queue", {
        "SqsManagedSseEnabled": True,
        "RedrivePolicy": {"deadLetterTargetArn": Match.any_value(), "maxReceiveCount": 5},
        "VisibilityTimeout": 360,
    })
    queue_policies = tpl.find_resources("AWS::SQS::QueuePolicy")
    for policy in queue_policies.values():
        statements = policy["Properties"]["PolicyDocument"]["Statement"]
        assert any(s["Effect"] == "Deny" and s.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}
                   for s in statements)
    config = _notifications(tpl)
    assert "LambdaFunctionConfigurations" not in config
    queues = config["QueueConfigurations"]
    assert {tuple(c["Events"]) for c in queues} == {("s3:ObjectCreated:*",), ("s3:ObjectRemoved:*",)}
    assert len(queues) == 2 * len(notification_suffixes())
    assert all(rule["prefix"] == "incoming/" for rule in _rules(queues))


def test_every_dead_letter_queue_is_alarmed_to_the_ops_topic(queued: tuple[Any, Template]) -> None:
    template = queued[1]
    queues = template.find_resources("AWS::SQS::Queue")
    dead_letter = {lid for lid, q in queues.items() if "RedrivePolicy" not in q["Properties"]
                   and q["Properties"].get("MessageRetentionPeriod") == 1209600}
    assert len(dead_letter) == 2  # the function's failure queue and the image events' DLQ
    alarmed = set()
    for alarm in template.find_resources("AWS::CloudWatch::Alarm").values():
        props = alarm["Properties"]
        if props.get("MetricName") == "ApproximateNumberOfMessagesVisible":
            alarmed.add(props["Dimensions"][0]["Value"]["Fn::GetAtt"][0])
            assert len(props["AlarmActions"]) == 1
    assert alarmed == dead_letter


def test_imported_buckets_scope_and_delete_permission(queued: tuple[Any, Template]) -> None:
    tpl = queued[1]
    assert tpl.find_resources("AWS::S3::Bucket") == {}
    statements = {s["Sid"]: s for s in _statements(tpl)}
    assert statements["ReadSourcePrefix"]["Resource"]["Fn::Join"][1][2] == ":s3:::my-photos/incoming/*"
    write = statements["WriteDestPrefix"]
    assert sorted(write["Action"]) == ["s3:DeleteObject", "s3:GetObject", "s3:PutObject"]
    assert write["Resource"]["Fn::Join"][1][2] == ":s3:::my-renditions/web/*"
    (notifications,) = tpl.find_resources("Custom::S3BucketNotifications").values()
    assert notifications["Properties"]["BucketName"] == "my-photos"
    (function,) = tpl.find_resources("AWS::Lambda::Function", {"Properties": {"Handler": "handler.handler"}}).values()
    env = function["Properties"]["Environment"]["Variables"]
    assert (env["DEST_BUCKET"], env["OUTPUT_FORMATS"], env["QUALITY"], env["DELETE_RENDITIONS"]) == (
        "my-renditions", "webp", "70", "true")


def test_queued_nag_clean(queued: tuple[Any, Template]) -> None:
    assert nag_errors(queued[0]) == []


# ------------------------------------------------------------------------------------------ settings


def _load(settings: dict[str, Any]) -> Any:
    return load_settings({"automations": {"image_resize": {"enabled": True, **settings}}}).automations.image_resize


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"dest_prefix": "uploads/resized/"}, "overlaps source_prefix"),
        ({"source_prefix": "img/", "dest_prefix": "img/"}, "overlaps source_prefix"),
        ({"source_prefix": "photos/uploads/", "dest_prefix": "photos/"}, "overlaps source_prefix"),
        ({"source_bucket_name": "same-bucket", "dest_bucket_name": "same-bucket", "dest_prefix": "uploads/x/"},
         "overlaps"),
        ({"dest_prefix": ""}, "overlaps"),
        ({"source_prefix": ""}, "source_prefix: must not be empty"),
        ({"source_prefix": "uploads"}, "must end with '/'"),
        ({"quality": 0}, "quality: must be between 1 and 100"),
        ({"quality": 101}, "quality"),
        ({"output_format": "bmp"}, "allowed values"),
        ({"renditions": [{"name": "a", "width": 10, "height": 10}, {"name": "a", "width": 5, "height": 5}]},
         "unique; repeated: a"),
        ({"renditions": [{"name": "../up", "width": 10, "height": 10}]}, "renditions.0.name"),
        ({"renditions": [{"name": "a/b", "width": 10, "height": 10}]}, "renditions.0.name"),
        ({"renditions": [{"name": "a", "width": 0, "height": 10}]}, "renditions.0.width"),
        ({"renditions": [{"name": "a", "width": 10, "height": 10, "fit": "fill"}]}, "allowed values"),
        ({"renditions": []}, "at least one rendition"),
        ({"max_pixels": 0}, "max_pixels"),
        ({"source_bucket_name": "Bad_Bucket"}, "not a valid S3 bucket name"),
        ({"trigger": "poll"}, "allowed values"),
        ({"batch_size": 11}, "batch_size"),
        ({"unknown_key": 1}, "unknown setting"),
    ],
)
def test_bad_settings_fail_synth_with_a_clear_message(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(SettingsError) as error:
        _load(settings)
    assert "automations.image_resize" in str(error.value)
    assert message in str(error.value)


def test_separate_destination_bucket_may_share_prefixes() -> None:
    settings = _load({"dest_bucket_name": "other-bucket", "dest_prefix": "uploads/"})
    assert settings.dest_prefix == "uploads/"
    settings = _load({"dest_bucket_name": "other-bucket", "dest_prefix": ""})
    assert settings.dest_prefix == ""


def test_nag_suppressions_are_scoped(direct: tuple[Any, Template]) -> None:
    """The prefix wildcards are suppressed on the S3 policy only, by exact pattern; no blanket '*' of ours."""
    resources = direct[1].to_json()["Resources"]
    suppressions = {
        logical_id: resource["Metadata"]["cdk_nag"]["rules_to_suppress"]
        for logical_id, resource in resources.items()
        if "cdk_nag" in resource.get("Metadata", {})
    }
    (access,) = [rules for logical_id, rules in suppressions.items() if logical_id.startswith("ImageAccess")]
    (rule,) = access
    assert rule["id"] == "AwsSolutions-IAM5"
    patterns = [item["regex"] for item in rule["applies_to"]]
    assert len(patterns) == 2 and all(p.endswith("\\*$/") for p in patterns)
    assert "uploads" in patterns[0] and "resized" in patterns[1]
    for logical_id, rules in suppressions.items():
        for item in rules:
            if "Resource::*" in item.get("applies_to", []):
                assert logical_id.startswith("ResizeXRayPolicy"), logical_id  # OpsFunction's X-Ray statement


@pytest.mark.parametrize("output_format", ["webp"])
def test_a_rendition_side_over_the_output_formats_limit_fails_synth(output_format: str) -> None:
    too_wide = {"renditions": [{"name": "huge", "width": 16384, "height": 100}], "output_format": output_format}
    with pytest.raises(SettingsError) as error:
        _load(too_wide)
    assert "automations.image_resize" in str(error.value)
    assert "16383" in str(error.value)
    assert _load({**too_wide, "output_format": "jpeg"}).renditions[0].width == 16384
    assert _load({"renditions": [{"name": "big", "width": 16383, "height": 100}], "output_format": "webp"})


def test_heic_and_heif_are_in_the_suffix_filters(direct: tuple[Any, Template]) -> None:
    suffixes = {rule["suffix"] for rule in _rules(_notifications(direct[1])["LambdaFunctionConfigurations"])}
    assert {".heic", ".HEIC", ".heif", ".HEIF"} <= suffixes


KEY_ARN = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"


def _kms_statement(tpl: Template) -> dict[str, Any]:
    (statement,) = [s for s in _statements(tpl) if s.get("Sid") == "BucketKeyThroughS3"]
    return statement


def test_sse_kms_with_a_named_key_grants_exactly_decrypt_and_generate_data_key_through_s3() -> None:
    assembly = build_with("image_resize", {"source_bucket_name": "my-photos", "kms_key_arn": KEY_ARN})
    tpl = template(assembly.stacks["image_resize"])
    statement = _kms_statement(tpl)
    assert sorted(statement["Action"]) == ["kms:Decrypt", "kms:GenerateDataKey"]
    assert statement["Resource"] == KEY_ARN
    via = statement["Condition"]["StringEquals"]["kms:ViaService"]
    if isinstance(via, str):  # the stack's region is known
        assert re.fullmatch(r"s3\.[a-z0-9-]+\.amazonaws\.com", via)
    else:
        assert via["Fn::Join"][1] == ["s3.", {"Ref": "AWS::Region"}, ".amazonaws.com"]
    kms_actions = [a for s in _statements(tpl) for a in ([s["Action"]] if isinstance(s["Action"], str)
                                                        else s["Action"]) if a.startswith("kms:")]
    assert sorted(kms_actions) == ["kms:Decrypt", "kms:GenerateDataKey"]
    assert nag_errors(assembly.stacks["image_resize"]) == []


def test_sse_kms_with_the_stacks_own_key_encrypts_its_bucket_with_it() -> None:
    assembly = build_with("image_resize", {"kms_key_arn": "create"})
    stack = assembly.stacks["image_resize"]
    tpl = template(stack)
    (key_id,) = tpl.find_resources("AWS::KMS::Key", {"Properties": {"EnableKeyRotation": True}})
    buckets = tpl.find_resources("AWS::S3::Bucket").items()
    (bucket,) = [b for logical, b in buckets if logical.startswith("SourceBucket")]
    (rule,) = bucket["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    assert rule["ServerSideEncryptionByDefault"]["KMSMasterKeyID"] == {"Fn::GetAtt": [key_id, "Arn"]}
    assert rule["BucketKeyEnabled"] is True
    assert _kms_statement(tpl)["Resource"] == {"Fn::GetAtt": [key_id, "Arn"]}
    assert nag_errors(stack) == []


def test_without_kms_the_role_has_no_kms_permission(direct: tuple[Any, Template]) -> None:
    assert not [s for s in _statements(direct[1]) if s.get("Sid") == "BucketKeyThroughS3"]


def test_deprecated_output_format_warns_at_synth() -> None:
    from aws_cdk.assertions import Annotations

    assembly = build_with("image_resize", {"output_format": "webp"})
    stack = assembly.stacks["image_resize"]
    Annotations.from_stack(stack).has_warning("*", Match.string_like_regexp("output_format is deprecated"))
    env = next(iter(template(stack).find_resources(
        "AWS::Lambda::Function", {"Properties": {"Handler": "handler.handler"}}).values()))
    assert env["Properties"]["Environment"]["Variables"]["OUTPUT_FORMATS"] == "webp"
