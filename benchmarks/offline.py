"""The environment every benchmark runs in: moto's fake credentials, Powertools quiet and traces off, so
nothing can reach a real AWS account. Call ``use_offline_aws`` before importing a function's modules
(Powertools reads its variables at import)."""

from __future__ import annotations

import os


def use_offline_aws(service: str, region: str = "us-east-1", **extra: str) -> None:
    os.environ.update({
        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": region, "AWS_REGION": region, "POWERTOOLS_TRACE_DISABLED": "1",
        "POWERTOOLS_METRICS_NAMESPACE": "opsauto-bench", "POWERTOOLS_SERVICE_NAME": service,
        "POWERTOOLS_LOG_LEVEL": "WARNING", "POWERTOOLS_METRICS_DISABLED": "true", **extra,
    })
