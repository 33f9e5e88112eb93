"""The Powertools objects every handler uses: JSON logger, EMF metrics, and the tracer.

Service name and namespace come from POWERTOOLS_SERVICE_NAME / POWERTOOLS_METRICS_NAMESPACE,
which OpsFunction sets on every function.

Tracing: every function runs with X-Ray active tracing, so Lambda records each invocation's segment
without any code in the function. The X-Ray SDK (Powertools Tracer: subsegments for the handler and
every AWS call) is opt-in with the project setting ``xray_sdk`` (environment ``XRAY_SDK=true``): importing
it creates two botocore clients and costs about 100 ms of every cold start (benchmarks/RESULTS.md).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, TypeVar, cast, overload

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

F = TypeVar("F", bound=Callable[..., Any])


class LambdaTracer:
    """The tracer when the X-Ray SDK is off: Lambda's active tracing records the invocation itself.

    Same decorators as Powertools' Tracer, with and without options.
    """

    @overload
    def capture_lambda_handler(self, handler: F, **options: Any) -> F: ...
    @overload
    def capture_lambda_handler(self, handler: None = None, **options: Any) -> Callable[[F], F]: ...
    def capture_lambda_handler(self, handler: F | None = None, **options: Any) -> F | Callable[[F], F]:
        return handler if handler is not None else _identity

    @overload
    def capture_method(self, method: F, **options: Any) -> F: ...
    @overload
    def capture_method(self, method: None = None, **options: Any) -> Callable[[F], F]: ...
    def capture_method(self, method: F | None = None, **options: Any) -> F | Callable[[F], F]:
        return method if method is not None else _identity


def _identity[G: Callable[..., Any]](function: G) -> G:
    return function


def _tracer() -> LambdaTracer:
    if os.environ.get("XRAY_SDK", "false").strip().lower() in ("1", "true", "yes", "on"):
        from aws_lambda_powertools import Tracer

        return cast(LambdaTracer, Tracer())  # the same decorator interface
    return LambdaTracer()


logger = Logger()
tracer = _tracer()
metrics = Metrics()

__all__ = ["LambdaTracer", "MetricUnit", "logger", "metrics", "tracer"]
