"""Why a function's role holds an action the function's own code never calls.

``KEPT[automation][action]`` (``action@<mode>`` for one mode only; ``"*"``: every function, from OpsFunction).
The least-privilege test fails on a granted action that is neither called in the runs nor explained here,
and on a reason here that explains nothing any more.
"""

from __future__ import annotations

PLATFORM_LOGS = "the Lambda service writes the function's logs to its log group with the function's role"
PLATFORM_XRAY = "the Lambda service sends the X-Ray trace segments of active tracing with the function's role"
PLATFORM_DESTINATION = ("the Lambda service sends a failed asynchronous event to the on-failure queue with the "
                        "function's role")
EVENT_SOURCE = ("the SQS event source mapping (the Lambda service) polls the work queue with the function's role; "
                "CDK's SqsEventSource grants ChangeMessageVisibility and GetQueueUrl beside the ReceiveMessage, "
                "DeleteMessage and GetQueueAttributes it uses")
HUB_TARGET = ("the hub account's own resources, when the hub is a target itself (listed in accounts); the "
              "organization scenario's targets are member accounts")
SWEEP_FANOUT = ("the periodic sweep's fan-out keeps its run in the run table; the organization scenario sends one "
                "forwarded event (no sweep)")
TOPIC_KEY = ("SNS encrypts a message for the KMS-encrypted ops topic with the publisher's permissions "
             "(moto's SNS does not call KMS)")

KEPT: dict[str, dict[str, str]] = {
    "*": {
        "logs:CreateLogStream": PLATFORM_LOGS,
        "logs:PutLogEvents": PLATFORM_LOGS,
        "xray:PutTraceSegments": PLATFORM_XRAY,
        "xray:PutTelemetryRecords": PLATFORM_XRAY,
        "sqs:SendMessage": PLATFORM_DESTINATION,
        "kms:Decrypt": TOPIC_KEY,
        "kms:GenerateDataKey": TOPIC_KEY,
        "sqs:ReceiveMessage": EVENT_SOURCE,
        "sqs:DeleteMessage": EVENT_SOURCE,
        "sqs:GetQueueAttributes": EVENT_SOURCE,
        "sqs:ChangeMessageVisibility": EVENT_SOURCE,
        "sqs:GetQueueUrl": EVENT_SOURCE,
        "organizations:DescribeAccount": "names a target account listed by id (the accounts under an OU are "
                                         "named by the listing); the scenario's targets are under OUs",
    },
    "image_resize": {
        "s3:DeleteObject": "deletes a source's renditions when the source is deleted (delete_renditions); the "
                           "scenario deletes no source",
        "s3:ListBucket": "without it HeadObject of a key that does not exist answers 403 instead of 404, and the "
                         "function could not tell \"no rendition yet\" from a permission problem (moto answers 404 "
                         "either way)",
    },
    "ec2_scheduler": {
        "ec2:DescribeInstances@organization": HUB_TARGET,
        "ec2:StartInstances@organization": HUB_TARGET,
        "ec2:StopInstances@organization": HUB_TARGET,
        "ec2:CreateTags@organization": HUB_TARGET,
        "rds:DescribeDBInstances@organization": HUB_TARGET,
        "rds:DescribeDBClusters@organization": HUB_TARGET,
        "autoscaling:DescribeAutoScalingGroups@organization": HUB_TARGET,
        "autoscaling:UpdateAutoScalingGroup@organization": HUB_TARGET,
        "autoscaling:CreateOrUpdateTags@organization": HUB_TARGET,
        "ec2:DeleteTags": "clears the ScheduleError tag once an instance that failed to start or stop succeeds",
        "rds:StartDBInstance": "schedules RDS instances (include_rds); the scenario schedules EC2 instances only",
        "rds:StopDBInstance": "schedules RDS instances (include_rds); the scenario schedules EC2 instances only",
        "rds:StartDBCluster": "schedules Aurora clusters (include_rds); the scenario schedules EC2 instances only",
        "rds:StopDBCluster": "schedules Aurora clusters (include_rds); the scenario schedules EC2 instances only",
        "rds:AddTagsToResource": "records the last scheduled state on RDS instances and clusters (include_rds)",
    },
    "alerts": {
        "dynamodb:DeleteItem": "Powertools' idempotency deletes its record when a delivery fails, so the retry "
                               "delivers (the failure path; the function tests exercise it)",
        "kms:Decrypt": "Secrets Manager decrypts the destinations secret (project key) with the caller's "
                       "permissions (moto's Secrets Manager does not call KMS)",
        "dynamodb:GetItem": "reads the Slack thread an earlier message of the same alarm started, to reply in it",
    },
    "member": {
        "ec2:StartInstances": "ec2_scheduler's member role: starts a member's instances at the period start; the "
                              "organization scenario runs at 18:05 (stops)",
        "ec2:DeleteTags": "ec2_scheduler's member role: clears the ScheduleError tag after a failed start or stop",
        "rds:StartDBInstance": "ec2_scheduler's member role: RDS instances on a schedule (include_rds)",
        "rds:StopDBInstance": "ec2_scheduler's member role: RDS instances on a schedule (include_rds)",
        "rds:StartDBCluster": "ec2_scheduler's member role: Aurora clusters on a schedule (include_rds)",
        "rds:StopDBCluster": "ec2_scheduler's member role: Aurora clusters on a schedule (include_rds)",
        "rds:AddTagsToResource": "ec2_scheduler's member role: records the state on RDS instances and clusters",
        "autoscaling:UpdateAutoScalingGroup": "ec2_scheduler's member role: scales a member's tagged Auto Scaling "
                                              "groups in and out (include_asg); the organization scenario's members "
                                              "have instances only (the ec2_scheduler scenario scales one at home)",
        "autoscaling:CreateOrUpdateTags": "ec2_scheduler's member role: records a group's state and its sizes "
                                          "before scaling in (include_asg)",
        "ec2:DescribeManagedPrefixLists": "sg_remediation's member role: resolves a customer-managed prefix list",
        "ec2:GetManagedPrefixListEntries": "sg_remediation's member role: resolves a customer-managed prefix list",
    },
    "sg_remediation": {
        "ec2:DescribeSecurityGroups@organization": HUB_TARGET,
        "ec2:DescribeSecurityGroupRules@organization": HUB_TARGET,
        "ec2:RevokeSecurityGroupIngress@organization": HUB_TARGET,
        "dynamodb:GetItem@organization": SWEEP_FANOUT,
        "dynamodb:PutItem@organization": SWEEP_FANOUT,
        "dynamodb:UpdateItem@organization": SWEEP_FANOUT,
        "dynamodb:Query@organization": SWEEP_FANOUT,
        "ec2:DescribeManagedPrefixLists": "resolves a rule that admits a customer-managed prefix list to its CIDRs",
        "ec2:GetManagedPrefixListEntries": "resolves a rule that admits a customer-managed prefix list to its CIDRs",
    },
    "key_rotation": {
        "iam:GenerateCredentialReport": "above credential_report_users IAM users (default 100) the sweep reads "
                                        "last use from one credential report; the scenario has six users",
        "iam:GetCredentialReport": "above credential_report_users IAM users (default 100) the sweep reads last "
                                   "use from one credential report; the scenario has six users",
        "iam:DeleteAccessKey": "deletes a managed user's previous key once its grace period is over (a later "
                               "rotation than the scenario's two)",
        "iam:UntagUser": "removes the deactivation record of a key the sweep deleted",
        "secretsmanager:GetRandomPassword": "added by CDK's RotationSchedule to every rotation function; this "
                                            "function makes IAM keys and never asks for a password",
        "sns:ListSubscriptionsByTopic": "subscribes an owner's email (owner tag) to the owner notices once",
        "sns:Subscribe": "subscribes an owner's email (owner tag) to the owner notices once",
    },
    "post_deploy_checks": {
        "kms:Decrypt": "the project key: SNS (ops topic) and Secrets Manager (token key) decrypt, and the Lambda "
                       "service encrypts the on-failure record, with the function's permissions",
        "kms:GenerateDataKey": "the project key: SNS (ops topic) and the Lambda service (on-failure queue) "
                               "encrypt with the function's permissions",
        "cloudwatch:DescribeAlarms": "bake time: watches the alarms a pipeline action names (the scenario's actions "
                                     "name none)",
        "codedeploy:PutLifecycleEventHookExecutionStatus": "CodeDeploy lifecycle hooks (the scenario runs the "
                                                           "CodePipeline action)",
        "secretsmanager:GetSecretValue": "reads the continuation-token key when a job continues (bake time) and "
                                         "the header secrets a check names",
    },
}


def kept_reason(automation: str, mode: str, action: str) -> str | None:
    for scope in (automation, "*"):
        reasons = KEPT.get(scope, {})
        for key in (f"{action}@{mode}", action):
            if key in reasons:
                return reasons[key]
    return None
