"""Entry point: CloudTrail security-group changes (via EventBridge) and the periodic sweep.

    event -> events.parse -> runner.run (adapter reads -> policy.plan_run -> adapter revokes -> reports)

A transient AWS failure is raised after every other group is done, so Lambda retries the event.
"""

from __future__ import annotations

from typing import Any

from sg_remediation import events, runner
from sg_remediation.config import Config
from shared.observability import logger, metrics, tracer


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: Any, context: Any) -> dict[str, Any]:
    config = Config.from_env()
    parsed = events.parse(event)
    result = runner.ignored(parsed) if isinstance(parsed, events.Ignored) else runner.run(parsed, config)
    if result.error is not None:
        raise result.error
    return result.as_dict()
