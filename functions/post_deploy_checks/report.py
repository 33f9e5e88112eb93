"""What a run reports: the answer to a CodePipeline job, and the action report of a failed deployment."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from post_deploy_checks.evaluate import Outcome
from shared.reports import ActionReport

AUTOMATION = "post_deploy_checks"


@dataclass(frozen=True)
class JobResult:
    """What to report for one CodePipeline job: exactly one of success, continuation or failure."""

    kind: str  # "success" | "continue" | "failure"
    summary: str = ""
    failure_type: str = ""
    message: str = ""
    continuation_token: str | None = None
    output_variables: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"result": self.kind}
        if self.kind == "failure":
            body.update(type=self.failure_type, message=self.message)
        else:
            body["summary"] = self.summary
        if self.output_variables:
            body["outputVariables"] = self.output_variables
        return body


def job_result(outcome: Outcome) -> JobResult:
    """The final answer for the checks' outcome."""
    if outcome.passed:
        return JobResult("success", summary=outcome.summary, output_variables=outcome.output_variables)
    return JobResult("failure", failure_type="JobFailed", message=outcome.failure_message, summary=outcome.summary)


def failure_report(subject: str, reason: str, resource: str) -> ActionReport:
    """The action report for a deployment failed by the checks (or by their bad configuration)."""
    return ActionReport(
        automation=AUTOMATION,
        mode="enforce",
        title=f"Post-deployment checks failed: {subject}",
        description=reason or "(no details)",
        event_type="PostDeployChecksFailed",
        summary=f"{subject} was failed by post-deployment checks",
        severity="warning",
        next_steps=["Open the failed checks above, fix the service or the checks, then retry the stage"],
        keywords=["deployment", "health-check"],
        related_resources=[resource],
    )
