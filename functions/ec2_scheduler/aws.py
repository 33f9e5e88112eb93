"""The adapter: the only module of ec2_scheduler that calls AWS.

EC2 start/stop calls take up to ``BATCH_SIZE`` (50) instance ids each. A batch that fails with a
per-instance error (IncorrectInstanceState, InsufficientInstanceCapacity, UnsupportedOperation, an
unknown id ...) is split in halves, recursively, so the instances that cause it are isolated and the
rest go through. Throttling and 5xx errors are retried by the clients' adaptive retry mode; when they
persist they are raised (transient: the run is retried).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from ec2_scheduler.plan import Resource, Sizes
from shared.clients import client
from shared.errors import is_transient
from shared.timeutil import iso, parse_time

if TYPE_CHECKING:  # boto3-stubs: types only, not shipped to Lambda
    from mypy_boto3_autoscaling import AutoScalingClient
    from mypy_boto3_autoscaling.type_defs import TagTypeDef as AsgTagTypeDef
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_ec2.type_defs import TagTypeDef
    from mypy_boto3_rds import RDSClient
    from mypy_boto3_rds.type_defs import TagTypeDef as RdsTagTypeDef
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_ssm import SSMClient

BATCH_SIZE = 50  # instance ids per StartInstances / StopInstances call
TAG_BATCH_SIZE = 500  # resource ids per CreateTags call (the API takes up to 1000)
DESCRIBE_PAGE_SIZE = 1000  # DescribeInstances MaxResults (the maximum)
RDS_PAGE_SIZE = 100  # DescribeDBInstances / DescribeDBClusters MaxRecords (the maximum)
ASG_PAGE_SIZE = 100  # DescribeAutoScalingGroups MaxRecords (the maximum)
PARAMETER_MAX_AGE = 60  # seconds the schedules parameter is cached (runs are minutes apart: read per run)
MAX_CALENDAR_BYTES = 1_000_000  # an iCalendar file larger than this is refused

# StopInstances(Hibernate=True) errors after which a normal stop is tried instead.
HIBERNATE_FALLBACK_CODES = frozenset({
    "UnsupportedOperation", "UnsupportedHibernationConfiguration", "InvalidParameterCombination",
    "InvalidParameterValue", "IncorrectInstanceState",
})


def describe_error(exc: ClientError) -> str:
    error = exc.response.get("Error", {})
    return f"{error.get('Code', 'Error')}: {error.get('Message', '')}".strip()


@dataclass
class BatchResult:
    succeeded: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # id -> "Code: message"
    fell_back: dict[str, str] = field(default_factory=dict)  # id -> why hibernation was not used
    calls: int = 0

    def merge(self, other: BatchResult) -> None:
        self.succeeded.extend(other.succeeded)
        self.failed.update(other.failed)
        self.fell_back.update(other.fell_back)
        self.calls += other.calls


def run_batches(call: Callable[[list[str]], Any], ids: list[str], size: int = BATCH_SIZE) -> BatchResult:
    """``call`` every batch of ``ids``; failed batches are split in halves to isolate the bad ids."""
    result = BatchResult()
    for start in range(0, len(ids), size):
        _bisect(call, ids[start : start + size], result)
    return result


def _bisect(call: Callable[[list[str]], Any], ids: list[str], result: BatchResult) -> None:
    if not ids:
        return
    result.calls += 1
    try:
        call(ids)
    except ClientError as exc:
        if is_transient(exc):
            raise
        if len(ids) == 1:
            result.failed[ids[0]] = describe_error(exc)
            return
        middle = len(ids) // 2
        _bisect(call, ids[:middle], result)
        _bisect(call, ids[middle:], result)
        return
    result.succeeded.extend(ids)


def one_call(resource_id: str, call: Callable[[], Any]) -> BatchResult:
    """One API call about one resource: a per-resource error is its failure; a transient one is raised."""
    result = BatchResult(calls=1)
    try:
        call()
    except ClientError as exc:
        if is_transient(exc):
            raise
        result.failed[resource_id] = describe_error(exc)
    else:
        result.succeeded.append(resource_id)
    return result


class Ec2:
    """EC2 in one region: of the function's own account, or of a target account (``ec2_client`` made with
    the member role's credentials, ``shared.targets_aws.Sessions``)."""

    def __init__(self, region: str, ec2_client: EC2Client | None = None) -> None:
        self.region = region
        self.client: EC2Client = ec2_client or client("ec2", region)

    def describe(self, tag_key: str) -> Iterator[Resource]:
        """Every instance carrying ``tag_key`` (any value) that is not terminated, page by page."""
        paginator = self.client.get_paginator("describe_instances")
        pages = paginator.paginate(
            Filters=[
                {"Name": "tag-key", "Values": [tag_key]},
                {"Name": "instance-state-name", "Values": ["pending", "running", "stopping", "stopped"]},
            ],
            PaginationConfig={"PageSize": DESCRIBE_PAGE_SIZE},
        )
        for page in pages:
            for reservation in page.get("Reservations", []):
                for instance in reservation.get("Instances", []):
                    tags = {t["Key"]: t.get("Value", "") for t in instance.get("Tags", [])}
                    yield Resource(
                        kind="ec2",
                        id=instance["InstanceId"],
                        region=self.region,
                        status=instance.get("State", {}).get("Name", "unknown"),
                        tags=tags,
                        hibernation_configured=bool(instance.get("HibernationOptions", {}).get("Configured")),
                        asg_group=tags.get("aws:autoscaling:groupName"),
                        state_reason=instance.get("StateReason", {}).get("Code", ""),
                        state_message=instance.get("StateReason", {}).get("Message", ""),
                        launched=instance.get("LaunchTime"),
                    )

    def start(self, ids: list[str]) -> BatchResult:
        return run_batches(lambda batch: self.client.start_instances(InstanceIds=batch), ids)

    def stop(self, ids: list[str], hibernate: bool = False) -> BatchResult:
        if not hibernate:
            return run_batches(lambda batch: self.client.stop_instances(InstanceIds=batch), ids)
        result = run_batches(lambda batch: self.client.stop_instances(InstanceIds=batch, Hibernate=True), ids)
        retry = {i: why for i, why in result.failed.items() if why.split(":", 1)[0] in HIBERNATE_FALLBACK_CODES}
        if retry:
            for instance_id in retry:
                del result.failed[instance_id]
            normal = self.stop(list(retry))
            result.merge(normal)
            for instance_id in normal.succeeded:
                result.fell_back[instance_id] = retry[instance_id]
        return result

    def tag(self, ids: list[str], key: str, value: str) -> BatchResult:
        tags: list[TagTypeDef] = [{"Key": key, "Value": value}]
        return run_batches(lambda batch: self.client.create_tags(Resources=batch, Tags=tags), ids, TAG_BATCH_SIZE)

    def untag(self, ids: list[str], key: str) -> BatchResult:
        return run_batches(lambda batch: self.client.delete_tags(Resources=batch, Tags=[{"Key": key}]), ids,
                           TAG_BATCH_SIZE)


class Rds:
    """RDS DB instances and clusters (Aurora, and Neptune/DocumentDB clusters) in one region.

    RDS has no batch start/stop: one call per resource.
    """

    def __init__(self, region: str, rds_client: RDSClient | None = None) -> None:
        self.region = region
        self.client: RDSClient = rds_client or client("rds", region)

    def describe(self, tag_key: str) -> Iterator[Resource]:
        instances = self.client.get_paginator("describe_db_instances")
        for page in instances.paginate(PaginationConfig={"PageSize": RDS_PAGE_SIZE}):
            for db in page.get("DBInstances", []):
                tags = {t["Key"]: t.get("Value", "") for t in db.get("TagList", [])}
                if tag_key not in tags:
                    continue
                yield Resource(
                    kind="rds-instance",
                    id=db["DBInstanceIdentifier"],
                    region=self.region,
                    status=db.get("DBInstanceStatus", "unknown"),
                    tags=tags,
                    arn=db.get("DBInstanceArn", ""),
                    read_replica_of=db.get("ReadReplicaSourceDBInstanceIdentifier")
                    or db.get("ReadReplicaSourceDBClusterIdentifier"),
                    cluster=db.get("DBClusterIdentifier"),
                    maintenance_window=db.get("PreferredMaintenanceWindow", ""),
                )
        clusters = self.client.get_paginator("describe_db_clusters")
        for cluster_page in clusters.paginate(PaginationConfig={"PageSize": RDS_PAGE_SIZE}):
            for cluster in cluster_page.get("DBClusters", []):
                tags = {t["Key"]: t.get("Value", "") for t in cluster.get("TagList", [])}
                if tag_key not in tags:
                    continue
                yield Resource(
                    kind="rds-cluster",
                    id=cluster["DBClusterIdentifier"],
                    region=self.region,
                    status=cluster.get("Status", "unknown"),
                    tags=tags,
                    arn=cluster.get("DBClusterArn", ""),
                    read_replica_of=cluster.get("ReplicationSourceIdentifier"),
                    maintenance_window=cluster.get("PreferredMaintenanceWindow", ""),
                )

    def start(self, resource: Resource) -> BatchResult:
        if resource.kind == "rds-cluster":
            return one_call(resource.id, lambda: self.client.start_db_cluster(DBClusterIdentifier=resource.id))
        return one_call(resource.id, lambda: self.client.start_db_instance(DBInstanceIdentifier=resource.id))

    def stop(self, resource: Resource) -> BatchResult:
        if resource.kind == "rds-cluster":
            return one_call(resource.id, lambda: self.client.stop_db_cluster(DBClusterIdentifier=resource.id))
        return one_call(resource.id, lambda: self.client.stop_db_instance(DBInstanceIdentifier=resource.id))

    def tag(self, resource: Resource, key: str, value: str) -> BatchResult:
        tags: list[RdsTagTypeDef] = [{"Key": key, "Value": value}]
        return one_call(resource.id, lambda: self.client.add_tags_to_resource(ResourceName=resource.arn, Tags=tags))



class Asg:
    """Auto Scaling groups in one region (of this account, or of a target account with ``asg_client``): a
    tagged group is scheduled as one resource."""

    def __init__(self, region: str, asg_client: AutoScalingClient | None = None) -> None:
        self.region = region
        self.client: AutoScalingClient = asg_client or client("autoscaling", region)

    def describe(self, tag_key: str) -> Iterator[Resource]:
        paginator = self.client.get_paginator("describe_auto_scaling_groups")
        pages = paginator.paginate(Filters=[{"Name": "tag-key", "Values": [tag_key]}],
                                   PaginationConfig={"PageSize": ASG_PAGE_SIZE})
        for page in pages:
            for group in page.get("AutoScalingGroups", []):
                tags = {t["Key"]: t.get("Value", "") for t in group.get("Tags", []) if "Key" in t}
                sizes = Sizes(group["MinSize"], group["DesiredCapacity"], group["MaxSize"])
                status = "deleting" if group.get("Status") else ("stopped" if sizes.desired == 0 and sizes.min == 0
                                                                 else "running")
                yield Resource(kind="asg", id=group["AutoScalingGroupName"], region=self.region, status=status,
                               tags=tags, arn=group.get("AutoScalingGroupARN", ""), sizes=sizes)

    def resize(self, resource: Resource, sizes: Sizes) -> BatchResult:
        return one_call(resource.id, lambda: self.client.update_auto_scaling_group(
            AutoScalingGroupName=resource.id, MinSize=sizes.min, DesiredCapacity=sizes.desired, MaxSize=sizes.max))

    def tag(self, resource: Resource, key: str, value: str) -> BatchResult:
        tags: list[AsgTagTypeDef] = [{"ResourceId": resource.id, "ResourceType": "auto-scaling-group", "Key": key,
                                      "Value": value, "PropagateAtLaunch": False}]
        return one_call(resource.id, lambda: self.client.create_or_update_tags(Tags=tags))


class Calendars:
    """Reads the calendars schedules name: iCalendar files in S3, SSM Change Calendar states."""

    def __init__(self) -> None:
        self.s3: S3Client = client("s3")
        self.ssm: SSMClient = client("ssm")

    def ics(self, bucket: str, key: str) -> bytes:
        response = self.s3.get_object(Bucket=bucket, Key=key)
        if response.get("ContentLength", 0) > MAX_CALENDAR_BYTES:
            raise ValueError(f"s3://{bucket}/{key} is larger than {MAX_CALENDAR_BYTES} bytes")
        return response["Body"].read()

    def state(self, name: str, at: datetime) -> tuple[str, datetime | None]:
        """GetCalendarState at ``at``: (OPEN or CLOSED, the next transition or None)."""
        response = self.ssm.get_calendar_state(CalendarNames=[name], AtTime=iso(at))
        upcoming = response.get("NextTransitionTime")
        return response["State"], parse_time(upcoming) if upcoming else None


_parameters: Any = None  # the Powertools SSM provider, with its cache, kept across warm invocations


def schedules_parameter(name: str) -> str:
    """The schedules parameter's value (Powertools parameters, cached ``PARAMETER_MAX_AGE`` seconds)."""
    global _parameters
    if _parameters is None:
        from aws_lambda_powertools.utilities.parameters import SSMProvider

        _parameters = SSMProvider(boto3_client=client("ssm"))
    return str(_parameters.get(name, max_age=PARAMETER_MAX_AGE))


def reset_parameters() -> None:
    """Forget the provider and its cache (tests start a fresh moto backend)."""
    global _parameters
    _parameters = None
