"""Entry point of image_resize: S3 notifications, SQS batches of them, and EventBridge S3 events.

handler -> runner (events -> planning -> imaging -> aws) -> one summary action report (SNS) per invocation.
"""

from __future__ import annotations

from typing import Any

from image_resize import aws, runner
from image_resize.config import Config
from shared.observability import logger, metrics, tracer
from shared.reports import ReportPublisher


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    config = Config.from_env()
    publisher = ReportPublisher(aws.sns_client(), config.topic_arn)
    return runner.run(event, context, config, aws.S3Store(), publisher)
