"""Entry point: EventBridge Scheduler (or a scheduled EventBridge rule) invokes it every few minutes.

"Now" is the event's ``time``; ``runner.handle`` decides every tagged resource's desired state at that
moment, acts, records, publishes the action report and emits the metrics.

Organization-wide (the stack's work queue, ``WORK_QUEUE_URL``): the scheduled invocation sends one work item
per (account, region) target; the queue's event source mapping invokes this handler with each, and
``runner.run_target`` works on it with the member role's clients; the run's one report comes from
``runner.summarize_run``.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from ec2_scheduler import runner
from ec2_scheduler.config import Config
from shared.fanout_run import Fanout, is_work_batch
from shared.observability import logger, metrics, tracer
from shared.timeutil import event_time

AUTOMATION = "ec2_scheduler"


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    config = Config.from_env()
    if config.fanout is None:
        return runner.handle(config, event_time(event))
    fan = Fanout.build(AUTOMATION, config.targets, config.fanout, context, config.topic_arn)
    summarize = partial(runner.summarize_run, config)
    if is_work_batch(event):
        return fan.work(event, context, partial(runner.run_target, config), summarize)
    return fan.dispatch(event, summarize)
