"""Entry point of the alerts function: event -> alerts -> destinations (see runner.py)."""

from __future__ import annotations

from typing import Any

from alerts import runner
from alerts.config import Config
from shared.observability import logger, metrics, tracer


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    config = Config.from_env()
    return runner.run(event, config, runner.live_ports(config, context))
