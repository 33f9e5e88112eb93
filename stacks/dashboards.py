"""CloudWatch dashboards: one per automation stack, one overview in the core stack.

An automation's dashboard is built from what its stack holds, so nothing has to be listed twice: every
OpsFunction (invocations, errors, duration, throttles, concurrency, through cdk-monitoring-constructs), every
queue of the stack (failure queues and dead-letter queues: kept events; work queues: backlog), the
automation's own metrics (``METRICS`` below: what its code emits, checked against the code by
tests/stacks/test_dashboards.py) and the status of every alarm of the stack.

The overview lives in the core stack and needs no reference to the automation stacks (which depend on the
core stack, not the other way round): its graphs are CloudWatch SEARCH expressions over the project's
functions and queues (their names start with the project prefix) and the project's metrics namespace.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import cdk_monitoring_constructs as monitoring
from aws_cdk import Duration, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from stacks.settings import ProjectSettings

# What each automation's code emits (namespace: the project prefix, dimension ``service`` = the automation;
# metrics with extra dimensions name them). Grouped as on the dashboard.
METRICS: dict[str, dict[str, tuple[str, ...]]] = {
    "image_resize": {
        "Images": ("ImagesResized", "ImagesRejected", "ImagesIgnored", "EventsIgnored", "BadEvents"),
        "Renditions": ("RenditionsWritten", "RenditionsUpToDate", "RenditionsDeleted"),
        "Source bytes": ("SourceBytes",),
    },
    "ec2_scheduler": {
        "Transitions": ("InstancesStarted", "InstancesStopped"),
        "Problems": ("ScheduleErrors", "ActionFailures", "ChangesRefused", "RegionErrors", "ScheduleSourceErrors"),
    },
    "alerts": {
        "Delivery": ("AlertsSent", "AlertsAlreadyDelivered", "AlertsKept", "AlertsFailed", "WebhookGone"),
        "Routing": ("AlertsUnrouted", "DestinationsInvalid"),
    },
    "sg_remediation": {
        "Findings": ("RulesRevoked", "FindingsReported", "RevokeFailures"),
        "Events": ("IgnoredEvents", "GroupsGone", "PrefixListsUnresolved", "EventsRefused"),
        "Delay from change to event (s)": ("EventDelaySeconds",),
    },
    "key_rotation": {
        "Rotation": ("RotationSteps", "KeysRotated", "RotationFailures"),
        "Sweep": ("KeysWarned", "KeysDeactivated", "KeysDeleted", "GuardTripped", "OwnerNotices"),
        "Events": ("IgnoredEvents",),
    },
    "post_deploy_checks": {
        "Checks": ("ChecksPassed", "ChecksFailed"),
        "Problems": ("ConfigurationErrors", "UnrecognisedEvents", "ReportPublishErrors"),
    },
}
# Metrics some automations emit with one more dimension than ``service`` (name -> dimension name).
EXTRA_DIMENSIONS: dict[str, dict[str, str]] = {
    "alerts": {"AlertsSent": "DestinationType", "AlertsAlreadyDelivered": "DestinationType",
               "AlertsKept": "DestinationType", "AlertsFailed": "DestinationType", "WebhookGone": "DestinationType"},
}
PERIOD = Duration.minutes(5)


def dashboard_name(stack: Stack) -> str:
    """Dashboard names are unique per account across regions: the region is part of the name."""
    return f"{stack.stack_name}-{stack.region}"


def add_automation_dashboard(stack: Stack, project: ProjectSettings, automation: str) -> monitoring.MonitoringFacade:
    """The dashboard of ``automation``'s stack, from the functions, queues and alarms it holds."""
    from stacks.platform import OpsFunction  # late: platform imports this module's users

    facade = monitoring.MonitoringFacade(
        stack, "Monitoring",
        dashboard_factory=monitoring.DefaultDashboardFactory(
            stack, "Dashboards", dashboard_name_prefix=dashboard_name(stack),
            create_dashboard=True, create_alarm_dashboard=False, create_summary_dashboard=False,
            rendering_preference=monitoring.DashboardRenderingPreference.INTERACTIVE_ONLY,
        ),
    )
    facade.add_large_header(f"{project.prefix} {automation}")
    constructs = stack.node.find_all()
    for ops in (c for c in constructs if isinstance(c, OpsFunction)):
        facade.monitor_lambda_function(lambda_function=ops.function, human_readable_name=ops.node.id,
                                       alarm_friendly_name=f"{automation}-{ops.node.id}")
    queues = [c for c in constructs if isinstance(c, sqs.Queue)]
    if queues:
        facade.add_medium_header("Queues (failure and dead-letter queues keep events: opsauto kept / replay)")
        for queue in queues:
            facade.monitor_sqs_queue(queue=queue, human_readable_name=queue.node.path.split("/", 1)[-1],
                                     alarm_friendly_name=f"{automation}-{queue.node.id}")
    groups = [
        monitoring.CustomMetricGroup(title=title, metrics=[automation_metric(project, automation, n) for n in names])
        for title, names in METRICS.get(automation, {}).items()
    ]
    if groups:
        facade.monitor_custom(metric_groups=groups, human_readable_name=f"{automation}: what it did",
                              alarm_friendly_name=f"{automation}-metrics")
    alarms = [c for c in constructs if isinstance(c, cloudwatch.Alarm)]
    if alarms:
        facade.add_widget(cloudwatch.AlarmStatusWidget(alarms=alarms, title="Alarms", width=24,
                                                       height=max(2, len(alarms) // 2 + 1)))
    return facade


def automation_metric(
    project: ProjectSettings, automation: str, name: str
) -> cloudwatch.Metric | cloudwatch.MathExpression:
    """The metric ``name`` as the automation's Powertools metrics emit it."""
    extra = EXTRA_DIMENSIONS.get(automation, {}).get(name)
    if extra is not None:
        # one line per value of the extra dimension, whatever values the function used
        return cloudwatch.MathExpression(
            expression=f"SEARCH('{{{project.prefix},{extra}}} MetricName=\"{name}\"', 'Sum', 300)",
            label=name, period=PERIOD, using_metrics={},
        )
    return cloudwatch.Metric(namespace=project.prefix, metric_name=name, dimensions_map={"service": automation},
                             statistic="Sum", period=PERIOD, label=name)


def add_overview_dashboard(
    scope: Construct, project: ProjectSettings, automations: Sequence[str]
) -> cloudwatch.Dashboard:
    """The project at a glance: every function and queue of the prefix, every automation's activity."""
    prefix = project.prefix
    # SEARCH matches tokens (split at non-alphanumerics): every token of the prefix must be in the name.
    tokens = [t for t in re.split(r"[^A-Za-z0-9]+", prefix) if t]

    def names(dimension: str) -> str:
        return " ".join(f"{dimension}={token}" for token in tokens)

    def search(expression: str, label: str) -> cloudwatch.MathExpression:
        return cloudwatch.MathExpression(expression=expression, label=label, period=PERIOD, using_metrics={})

    def lambda_graph(metric: str, stat: str) -> cloudwatch.GraphWidget:
        return cloudwatch.GraphWidget(
            title=f"Functions: {metric}", width=8, height=6,
            left=[search(f"SEARCH('{{AWS/Lambda,FunctionName}} MetricName=\"{metric}\" {names('FunctionName')}', "
                         f"'{stat}', 300)", metric)],
        )

    dashboard = cloudwatch.Dashboard(scope, "Overview", dashboard_name=f"{prefix}-overview-{Stack.of(scope).region}",
                                     default_interval=Duration.hours(24))
    dashboard.add_widgets(cloudwatch.TextWidget(
        markdown=f"# {prefix}: overview\nEnabled: {', '.join(automations) or 'none'}. Each automation has its "
                 f"own dashboard (`{prefix}-<automation>-<region>`); `opsauto status` lists them with kept events and "
                 "firing alarms. [Alarms of the project](/cloudwatch/home#alarmsV2:?search="
                 f"{prefix}-)", width=24, height=2))
    dashboard.add_widgets(lambda_graph("Invocations", "Sum"), lambda_graph("Errors", "Sum"),
                          lambda_graph("Throttles", "Sum"))
    dashboard.add_widgets(
        lambda_graph("Duration", "Maximum"),
        cloudwatch.GraphWidget(title="Queues: kept and waiting messages", width=8, height=6, left=[search(
            f"SEARCH('{{AWS/SQS,QueueName}} MetricName=\"ApproximateNumberOfMessagesVisible\" "
            f"{names('QueueName')}', 'Maximum', 300)", "messages")]),
        cloudwatch.GraphWidget(title="What the automations did", width=8, height=6, left=[search(
            f"SEARCH('{{{prefix},service}}', 'Sum', 300)", "metric")]),
    )
    return dashboard
