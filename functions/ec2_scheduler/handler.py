"""Entry point: EventBridge Scheduler (or a scheduled EventBridge rule) invokes it every few minutes.

"Now" is the event's ``time``; the run decides every tagged resource's desired state at that moment,
acts, records, publishes one action report when something changed (or would, in report mode) and
emits the metrics InstancesStarted, InstancesStopped, ScheduleErrors, ActionFailures, ChangesRefused.
"""

from __future__ import annotations

from typing import Any

from ec2_scheduler import report, runner
from ec2_scheduler.config import Config
from shared.clients import client
from shared.observability import MetricUnit, logger, metrics, tracer
from shared.reports import ReportPublisher
from shared.timeutil import event_time


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    config = Config.from_env()
    now = event_time(event)
    for name, error in config.bad_schedules.items():
        logger.warning("malformed schedule: resources using it are left alone", schedule=name, reason=error)

    result = runner.run(config, now)

    metrics.add_metric("InstancesStarted", MetricUnit.Count, len(result.started))
    metrics.add_metric("InstancesStopped", MetricUnit.Count, len(result.stopped))
    metrics.add_metric("ScheduleErrors", MetricUnit.Count, len(result.problems))
    metrics.add_metric("ActionFailures", MetricUnit.Count, len(result.failed))
    metrics.add_metric("ChangesRefused", MetricUnit.Count, len(result.with_status("refused")))
    for decision in result.problems:
        logger.warning("resource left alone", resource=decision.resource.id, region=decision.resource.region,
                       schedule=decision.schedule, reason=decision.reason)
    summary = runner.summary(result)
    logger.info("run finished", extra={"summary": {k: v for k, v in summary.items() if k != "decisions"},
                                       "decisions": summary["decisions"]})
    if result.reportable:
        message_id = ReportPublisher(client("sns"), config.topic_arn).publish(report.build_report(result))
        summary["reportMessageId"] = message_id
    if result.error is not None:
        raise result.error
    return summary
