"""The closed error hierarchy of sddc-backup.

Every error the service reports to an operator is one of these classes. Each class carries a stable
``error_code`` (never renamed once released), the HTTP status it maps to, and a remediation that tells
the operator what to do. The API layer maps them, in one place, to the VCF ``Error`` body.

    SddcBackupError
    ├── InvalidInputError            400  the request is malformed or breaks a rule
    │   └── ConfigurationRuleError   400  a backup configuration rule (code per rule)
    ├── AuthenticationError          401  no, bad or expired credentials
    ├── LoginThrottledError          429  too many failed logins
    ├── PermissionDeniedError        403  the role may not do this
    ├── NotFoundError                404
    ├── MethodNotAllowedError        405
    ├── ConflictError                409  the resource is not in a state that allows this
    └── InternalError                500  a bug or an unexpected failure
"""

from __future__ import annotations

from collections.abc import Mapping


class SddcBackupError(Exception):
    """Base of every error the service reports.

    ``arguments`` are the values substituted into the message, kept as strings because the VCF body
    carries them as a list of strings; ``context`` is a flat string map for machine consumers.
    """

    error_code = "SDDC_BACKUP_ERROR"
    http_status = 500
    remediation = "Check the service log for details."

    def __init__(
        self,
        message: str,
        *,
        error_code: str | None = None,
        remediation: str | None = None,
        arguments: tuple[str, ...] = (),
        context: Mapping[str, str] | None = None,
        nested: tuple[SddcBackupError, ...] = (),
    ) -> None:
        super().__init__(message)
        self.message = message
        if error_code is not None:
            self.error_code = error_code
        if remediation is not None:
            self.remediation = remediation
        self.arguments = arguments
        self.context: dict[str, str] = dict(context or {})
        self.nested = nested


class InvalidInputError(SddcBackupError):
    error_code = "INVALID_INPUT"
    http_status = 400
    remediation = "Correct the request body as the message says and send it again."


class ConfigurationRuleError(InvalidInputError):
    """A backup configuration breaks one or more rules; ``nested`` holds one error per rule."""

    error_code = "INVALID_BACKUP_CONFIGURATION"


class AuthenticationError(SddcBackupError):
    # The SDK's token-refresh filter retries on exactly this code, so it keeps the appliance's spelling.
    error_code = "Unauthenticated"
    http_status = 401
    remediation = (
        "Get a token with POST /v1/tokens and send it as 'Authorization: Bearer <accessToken>', "
        "or send HTTP Basic credentials of a local user."
    )


class LoginThrottledError(SddcBackupError):
    error_code = "TOO_MANY_FAILED_LOGINS"
    http_status = 429
    remediation = "Wait for the time given in the Retry-After header, then log in with the right password."

    def __init__(self, message: str, *, retry_after_seconds: int) -> None:
        super().__init__(message, context={"retryAfterSeconds": str(retry_after_seconds)})
        self.retry_after_seconds = retry_after_seconds


class PermissionDeniedError(SddcBackupError):
    error_code = "INSUFFICIENT_PRIVILEGES"
    http_status = 403
    remediation = "Use an account with the ADMIN or OPERATOR role for this operation."


class NotFoundError(SddcBackupError):
    error_code = "NOT_FOUND"
    http_status = 404
    remediation = "Check the identifier or path; list the resources to find the right one."


class MethodNotAllowedError(SddcBackupError):
    error_code = "METHOD_NOT_ALLOWED"
    http_status = 405
    remediation = "Use one of the methods the API reference lists for this path."


class ConflictError(SddcBackupError):
    error_code = "CONFLICT"
    http_status = 409
    remediation = "Check the state of the resource and try again when it allows the operation."


class InternalError(SddcBackupError):
    error_code = "INTERNAL_SERVER_ERROR"
    http_status = 500
    remediation = (
        "This is a fault in sddc-backup. Find the referenceToken in the service log for the details, "
        "and report it."
    )
