"""The VCF ``Error`` body and its conversion from a ``SddcBackupError``."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from sddc_backup.api.schemas.base import VcfModel
from sddc_backup.domain.errors import SddcBackupError
from sddc_backup.domain.tasks import ErrorRecord


class ErrorCause(VcfModel):
    type: str | None = None
    message: str | None = None


class Error(VcfModel):
    error_code: str
    error_type: str | None = None
    message: str
    remediation_message: str
    arguments: list[str] = Field(default_factory=list)
    context: dict[str, str] = Field(default_factory=dict)
    causes: list[ErrorCause] = Field(default_factory=list)
    nested_errors: list[Error] = Field(default_factory=list)
    reference_token: str | None = None

    @classmethod
    def of(cls, error: SddcBackupError, reference_token: str | None = None) -> Error:
        return cls(
            error_code=error.error_code,
            error_type="ERROR",
            message=error.message,
            remediation_message=error.remediation,
            arguments=list(error.arguments),
            context=error.context,
            nested_errors=[cls.of(n) for n in error.nested],
            reference_token=reference_token,
        )

    @classmethod
    def of_record(cls, record: ErrorRecord) -> Error:
        return cls(
            error_code=record.error_code,
            error_type="ERROR",
            message=record.message,
            remediation_message=record.remediation,
            arguments=record.arguments,
            context=record.context,
            reference_token=record.reference_token,
        )


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI ``responses`` entry documenting a VCF ``Error`` body for each of ``statuses``."""
    return {status: {"model": Error} for status in statuses}
