"""Post-deployment checks: pass or fail a CodePipeline job or a CodeDeploy lifecycle hook.

Entry only: parse the event, read the function's configuration, hand both to the runner (which answers
the job or hook exactly once, a bad configuration included). The event is never logged: a CodePipeline job
carries ``artifactCredentials``.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from post_deploy_checks import runner
from post_deploy_checks.config import Config
from post_deploy_checks.events import HookRequest, JobRequest, parse_event
from shared.config import ConfigError
from shared.observability import logger, metrics, tracer


@logger.inject_lambda_context(log_event=False, clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = parse_event(event)
    if not isinstance(request, JobRequest | HookRequest):
        return runner.ignore(request)
    config: Config | ConfigError
    try:
        config = Config.from_env()
    except ConfigError as exc:  # still answered: the runner fails the job or hook with this reason
        config = exc
    if isinstance(request, JobRequest):
        return runner.handle_job(request, config, context)
    return runner.handle_hook(request, config, context)
