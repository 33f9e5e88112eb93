"""Pure parsers of AWS names that several automations take in their settings: regions and Secrets
Manager secret names. The settings models call them at synth time, the functions' ``Config`` at run
time, so both accept exactly the same values. Each raises ``ValueError`` with the value and the rule."""

from __future__ import annotations

import re
from collections.abc import Iterable

# Partition prefixes and names as AWS writes them: us-east-1, us-gov-west-1, cn-north-1, us-isob-east-1,
# eusc-de-east-1, ap-southeast-5.
REGION_PATTERN = r"^[a-z]{2,4}(-[a-z]+)+-\d{1,2}$"
# Secrets Manager: 1 to 512 of letters, digits and /_+=.@- (an ARN is not a name).
SECRET_NAME_PATTERN = r"^[A-Za-z0-9/_+=.@-]{1,512}$"  # noqa: S105 (a name pattern, not a password)

_REGION = re.compile(REGION_PATTERN)
_SECRET_NAME = re.compile(SECRET_NAME_PATTERN)


def parse_region(value: object) -> str:
    """An AWS region name such as ``eu-central-1``."""
    if not isinstance(value, str) or not _REGION.match(value):
        raise ValueError(f"{value!r} is not an AWS region name (such as eu-central-1)")
    return value


def parse_regions(values: Iterable[object]) -> list[str]:
    """A list of region names, each at most once, in the order given."""
    regions = [parse_region(value) for value in values]
    repeated = sorted({region for region in regions if regions.count(region) > 1})
    if repeated:
        raise ValueError(f"regions listed more than once: {', '.join(repeated)}")
    return regions


def parse_secret_name(value: object) -> str:
    """A Secrets Manager secret name (not an ARN): 1-512 letters, digits and ``/_+=.@-``."""
    if not isinstance(value, str) or not _SECRET_NAME.match(value):
        raise ValueError(f"{value!r} is not a secret name: 1-512 letters, digits and /_+=.@- (a name, not an ARN)")
    return value
