"""IAM access-key rotation (Secrets Manager rotation steps) and the stale-key sweep (scheduled).

One function, two triggers:

- Secrets Manager rotation: ``{"Step": "createSecret" | "setSecret" | "testSecret" | "finishSecret",
  "SecretId": ..., "ClientRequestToken": ...}``; a failing step raises so Secrets Manager marks the
  rotation failed (``AWSCURRENT`` stays where it was);
- the scheduled sweep: an EventBridge scheduled event (rule or Scheduler) whose ``time`` is "now";
- organization-wide (``WORK_QUEUE_URL`` set): the scheduled event dispatches one work item per target account to
  the work queue, and the queue's event source mapping invokes the function with one account to sweep
  (``shared.fanout_run``; ``runner.OrgSweep``). Rotation stays in this account, where the secrets are.

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
from key_rotation.report import AUTOMATION
from shared.clients import client
from shared.fanout_run import Fanout, is_work_batch
from shared.observability import logger, metrics, tracer
from shared.reports import ReportPublisher

# The wait between testSecret's attempts and credential report polls; tests replace it to stay fast.
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
    adapter = aws.Aws(sleep=lambda seconds: SLEEP(seconds))
    if isinstance(event, Mapping) and "Step" in event:
        return runner.rotate(event, config, adapter, publisher, sleep=lambda seconds: SLEEP(seconds))
    if config.fanout is not None and (is_work_batch(event) or is_scheduled(event)):
        fan = Fanout.build(AUTOMATION, config.targets, config.fanout, context, config.notify_topic_arn)
        sweeps = runner.OrgSweep(config, fan.own_account, lambda iam: aws.Aws(sleep=lambda s: SLEEP(s), iam=iam),
                                 fan.account_label)
        if is_work_batch(event):
            return fan.work(event, context, sweeps.run_one, sweeps.summarize)
        return fan.dispatch(event, sweeps.summarize)
    if is_scheduled(event):
        return runner.sweep(event, config, adapter, publisher)
    return runner.ignore(event)
