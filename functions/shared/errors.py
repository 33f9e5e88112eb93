"""What a failed AWS call means: its error code, and whether a retry can help."""

from __future__ import annotations

from botocore.exceptions import ClientError

# Codes that mean "try again later": throttling, capacity, the service's own 5xx.
TRANSIENT_CODES = frozenset({
    "Throttling", "ThrottlingException", "ThrottledException", "RequestLimitExceeded", "TooManyRequestsException",
    "RequestThrottled", "RequestThrottledException", "SlowDown", "PriorRequestNotComplete",
    "ProvisionedThroughputExceededException",
    "InternalError", "InternalFailure", "InternalServerError", "InternalServiceError", "ServiceUnavailable",
    "ServiceUnavailableException", "Unavailable", "RequestTimeout", "RequestTimeoutException", "EC2ThrottledException",
})
# Codes that mean "this principal may not": a retry will not help until someone changes a policy.
ACCESS_CODES = frozenset({
    "AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "AuthFailure", "UnrecognizedClientException",
    "InvalidClientTokenId", "OptInRequired", "SignatureDoesNotMatch", "ExpiredToken",
})


def error_code(exc: BaseException) -> str:
    """The AWS error code of a ``ClientError`` (``""`` for anything else)."""
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", ""))
    return ""


def is_transient(exc: BaseException) -> bool:
    """Throttling or a server-side failure: raise so that Lambda (or SQS) retries."""
    if not isinstance(exc, ClientError):
        return False
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    return error_code(exc) in TRANSIENT_CODES or (isinstance(status, int) and status >= 500)


def is_access_denied(exc: BaseException) -> bool:
    """The call was refused by IAM, an SCP or an opt-in region: permanent until a person acts."""
    return error_code(exc) in ACCESS_CODES
