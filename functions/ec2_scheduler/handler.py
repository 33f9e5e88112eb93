"""Entry point: EventBridge Scheduler (or a scheduled EventBridge rule) invokes it every few minutes.

"Now" is the event's ``time``; ``runner.handle`` decides every tagged resource's desired state at that
moment, acts, records, publishes the action report and emits the metrics.
"""

from __future__ import annotations

from typing import Any

from ec2_scheduler import runner
from ec2_scheduler.config import Config
from shared.observability import logger, metrics, tracer
from shared.timeutil import event_time


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return runner.handle(Config.from_env(), event_time(event))
