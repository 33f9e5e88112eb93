"""IAM access-key rotation (Secrets Manager rotation steps) and the stale-key sweep (scheduled).

One function, two triggers:

- Secrets Manager rotation: ``{"Step": "createSecret" | "setSecret" | "testSecret" | "finishSecret",
  "SecretId": ..., "ClientRequestToken": ...}``; a failing step raises so Secrets Manager marks the
  rotation failed (``AWSCURRENT`` stays where it was);
- the scheduled sweep: an EventBridge scheduled event (rule or Scheduler) whose ``time`` is "now".

Anything else is logged as a warning, counted (``IgnoredEvents``) and not retried.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from key_rotation import aws, runner
from key_rotation.config import Config
from shared.clients import client
from shared.observability import logger, metrics, tracer
from shared.reports import ReportPublisher

# The wait between testSecret's attempts; tests replace it to stay fast.
SLEEP: Callable[[float], None] = time.sleep


def is_scheduled(event: Any) -> bool:
    """An EventBridge scheduled event (rule: "Scheduled Event"; Scheduler: "Scheduled Event" too)."""
    return isinstance(event, Mapping) and (
        event.get("detail-type") == "Scheduled Event" or event.get("source") in ("aws.events", "aws.scheduler")
    )


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    config = Config.from_env(os.environ)
    publisher = ReportPublisher(client("sns"), config.notify_topic_arn)
    if isinstance(event, Mapping) and "Step" in event:
        return runner.rotate(event, config, aws.Aws(), publisher, sleep=lambda seconds: SLEEP(seconds))
    if is_scheduled(event):
        return runner.sweep(event, config, aws.Aws(), publisher)
    return runner.ignore(event)
