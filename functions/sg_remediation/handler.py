"""Entry point: CloudTrail security-group changes (via EventBridge) and the periodic sweep.

    event -> events.parse -> runner.run (adapter reads -> policy.plan_run -> adapter revokes -> reports)

A transient AWS failure is raised after every other group is done, so Lambda retries the event.

Organization-wide: the sweep sends one work item per (account, region) to the stack's work queue
(``WORK_QUEUE_URL``), whose event source mapping invokes this handler with each (``runner.run_target``; one
summary per sweep); a change forwarded from a member account is remediated there (``runner.run_change``).
"""

from __future__ import annotations

from functools import partial
from typing import Any

from sg_remediation import events, runner
from sg_remediation.config import Config
from shared.fanout_run import Fanout, is_work_batch
from shared.observability import logger, metrics, tracer

AUTOMATION = "sg_remediation"


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: Any, context: Any) -> dict[str, Any]:
    config = Config.from_env()
    summarize = partial(runner.summarize_sweep, config)
    if config.fanout is not None and is_work_batch(event):
        fan = Fanout.build(AUTOMATION, config.targets, config.fanout, context, config.topic_arn)
        return fan.work(event, context, partial(runner.run_target, config), summarize)
    parsed = events.parse(event)
    if isinstance(parsed, events.Sweep) and config.fanout is not None:
        fan = Fanout.build(AUTOMATION, config.targets, config.fanout, context, config.topic_arn)
        return fan.dispatch(event, summarize)
    if isinstance(parsed, events.Ignored):
        result = runner.ignored(parsed)
    elif isinstance(parsed, events.Change) and not config.targets.local_only:
        result = runner.run_change(parsed, config, runner.reach(config.targets, context))
    else:
        result = runner.run(parsed, config)
    if result.error is not None:
        raise result.error
    return result.as_dict()
