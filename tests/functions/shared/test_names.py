"""shared.names: the region, secret-name, KMS key ARN and email parsers several automations share."""

from __future__ import annotations

import pytest

from shared.names import parse_email, parse_kms_key_arn, parse_region, parse_regions, parse_secret_name


@pytest.mark.parametrize("region", ["us-east-1", "eu-central-1", "us-gov-west-1", "cn-northwest-1",
                                    "us-isob-east-1", "ap-southeast-5", "eusc-de-east-1", "il-central-1"])
def test_region_names(region: str) -> None:
    assert parse_region(region) == region


@pytest.mark.parametrize("bad", ["", "us-east", "US-EAST-1", "useast1", "us-east-1 ", "eu_central_1", 1, None])
def test_not_region_names(bad: object) -> None:
    with pytest.raises(ValueError, match="is not an AWS region name"):
        parse_region(bad)


def test_regions_keep_order_and_refuse_repeats() -> None:
    assert parse_regions(["eu-west-1", "us-east-1"]) == ["eu-west-1", "us-east-1"]
    with pytest.raises(ValueError, match="listed more than once: eu-west-1"):
        parse_regions(["eu-west-1", "us-east-1", "eu-west-1"])


@pytest.mark.parametrize("name", ["prod/api/token", "a", "opsauto/alerts/destinations", "x" * 512, "k=v+@.-_"])
def test_secret_names(name: str) -> None:
    assert parse_secret_name(name) == name


@pytest.mark.parametrize("bad", ["", "x" * 513, "has space", "arn:aws:secretsmanager:us-east-1:1:secret:x", 5])
def test_not_secret_names(bad: object) -> None:
    with pytest.raises(ValueError, match="is not a secret name"):
        parse_secret_name(bad)


@pytest.mark.parametrize("arn", ["arn:aws:kms:eu-central-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
                                 "arn:aws-us-gov:kms:us-gov-west-1:123456789012:key/mrk-1234abcd12ab34cd56ef1234567890ab"])
def test_kms_key_arns(arn: str) -> None:
    assert parse_kms_key_arn(arn) == arn


@pytest.mark.parametrize("bad", ["", "1234abcd-12ab-34cd-56ef-1234567890ab", "alias/aws/s3",
                                 "arn:aws:kms:eu-central-1:123456789012:alias/photos",
                                 "arn:aws:kms:eu-central-1:12345:key/1234abcd-12ab-34cd-56ef-1234567890ab",
                                 "arn:aws:kms:eu-central-1:123456789012:key/not-a-key-id", None])
def test_not_kms_key_arns(bad: object) -> None:
    with pytest.raises(ValueError, match="is not a KMS key ARN"):
        parse_kms_key_arn(bad)


def test_email_addresses() -> None:
    assert parse_email("ops@example.com") == "ops@example.com"
    for bad in ["ops", "ops@example", "a b@example.com", "@example.com", 3]:
        with pytest.raises(ValueError, match="is not an email address"):
            parse_email(bad)
