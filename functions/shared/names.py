"""Pure parsers of names that several automations take in their settings: regions, Secrets Manager
secret names, KMS key ARNs and email addresses. The settings models call them at synth time, the
functions' ``Config`` at run time, so both accept exactly the same values. Each raises ``ValueError``
with the value and the rule."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TypeGuard

# Partition prefixes and names as AWS writes them: us-east-1, us-gov-west-1, cn-north-1, us-isob-east-1,
# eusc-de-east-1, ap-southeast-5.
REGION_PATTERN = r"^[a-z]{2,4}(-[a-z]+)+-\d{1,2}$"
# Secrets Manager: 1 to 512 of letters, digits and /_+=.@- (an ARN is not a name).
SECRET_NAME_PATTERN = r"^[A-Za-z0-9/_+=.@-]{1,512}$"  # noqa: S105 (a name pattern, not a password)

# A key id is a UUID, or mrk- and 32 hex digits for a multi-Region key.
KMS_KEY_ARN_PATTERN = (r"^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key/"
                       r"([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|mrk-[0-9a-f]{32})$")
EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"

_REGION = re.compile(REGION_PATTERN)
_SECRET_NAME = re.compile(SECRET_NAME_PATTERN)
_KMS_KEY_ARN = re.compile(KMS_KEY_ARN_PATTERN)
_EMAIL = re.compile(EMAIL_PATTERN)


def is_region(value: object) -> TypeGuard[str]:
    return isinstance(value, str) and bool(_REGION.match(value))


def parse_region(value: object) -> str:
    """An AWS region name such as ``eu-central-1``."""
    if not is_region(value):
        raise ValueError(f"{value!r} is not an AWS region name (such as eu-central-1)")
    return value


def parse_regions(values: Iterable[object]) -> list[str]:
    """A list of region names, each at most once, in the order given."""
    regions = [parse_region(value) for value in values]
    repeated = sorted({region for region in regions if regions.count(region) > 1})
    if repeated:
        raise ValueError(f"regions listed more than once: {', '.join(repeated)}")
    return regions


def is_secret_name(value: object) -> TypeGuard[str]:
    return isinstance(value, str) and bool(_SECRET_NAME.match(value))


def parse_secret_name(value: object) -> str:
    """A Secrets Manager secret name (not an ARN): 1-512 letters, digits and ``/_+=.@-``."""
    if not is_secret_name(value):
        raise ValueError(f"{value!r} is not a secret name: 1-512 letters, digits and /_+=.@- (a name, not an ARN)")
    return value


def parse_kms_key_arn(value: object) -> str:
    """A KMS key ARN, ``arn:aws:kms:<region>:<account>:key/<key id>`` (an alias or a bare id is not)."""
    if not isinstance(value, str) or not _KMS_KEY_ARN.match(value):
        raise ValueError(f"{value!r} is not a KMS key ARN (arn:aws:kms:<region>:<account>:key/<key id>)")
    return value


def is_email(value: str) -> bool:
    return bool(_EMAIL.match(value.strip()))


def parse_email(value: object) -> str:
    """An email address (one ``@``, a dot in the domain, no spaces)."""
    if not isinstance(value, str) or not is_email(value):
        raise ValueError(f"{value!r} is not an email address")
    return value
