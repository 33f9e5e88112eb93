"""shared.names: the region and secret-name parsers several automations share."""

from __future__ import annotations

import pytest

from shared.names import parse_region, parse_regions, parse_secret_name


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
