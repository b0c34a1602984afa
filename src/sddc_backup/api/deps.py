"""What routes depend on: the services, and the caller's identity checked against a permission.

Both ``Authorization: Bearer <accessToken>`` and ``Authorization: Basic`` with a local user are
accepted on every protected route (PowerVCF's restore cmdlets send Basic).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBasic, HTTPBasicCredentials, HTTPBearer

from sddc_backup.domain.errors import AuthenticationError, PermissionDeniedError
from sddc_backup.domain.users import Permission, role_allows
from sddc_backup.persistence.catalog import BackupCatalog
from sddc_backup.services.auth import Authenticator, Principal
from sddc_backup.services.backups import BackupService
from sddc_backup.services.configuration import BackupConfigurationService
from sddc_backup.services.locations import LocationAccess
from sddc_backup.services.readiness import Readiness
from sddc_backup.services.restore.service import RestoreService
from sddc_backup.services.retention import RetentionService
from sddc_backup.services.verification import VerificationService
from sddc_backup.tasks.engine import TaskEngine


@dataclass(frozen=True)
class ApiServices:
    auth: Authenticator
    configuration: BackupConfigurationService
    backups: BackupService
    restores: RestoreService
    verifications: VerificationService
    retention: RetentionService
    locations: LocationAccess
    catalog: BackupCatalog
    engine: TaskEngine
    readiness: Readiness


def _services(request: Request) -> ApiServices:
    services: ApiServices = request.app.state.services
    return services


Services = Annotated[ApiServices, Depends(_services)]

# Declared for the OpenAPI document (and its clients); the header is parsed below, for both schemes.
_bearer = HTTPBearer(auto_error=False, description="An accessToken from POST /v1/tokens")
_basic = HTTPBasic(auto_error=False, description="A local user, e.g. admin@local")


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _require(permission: Permission) -> Callable[..., Awaitable[Principal]]:
    async def dependency(
        request: Request,
        services: Services,
        _bearer_seen: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)] = None,
        _basic_seen: Annotated[HTTPBasicCredentials | None, Security(_basic)] = None,
    ) -> Principal:
        principal = await _authenticate(request, services.auth)
        if not role_allows(principal.role, permission):
            raise PermissionDeniedError(
                f"{principal.username} has the {principal.role.value} role, which may not do this.",
                context={"requiredPermission": permission.value},
            )
        return principal

    return dependency


async def _authenticate(request: Request, auth: Authenticator) -> Principal:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    value = value.strip()
    if scheme.lower() == "bearer" and value:
        return await auth.from_bearer(value)
    if scheme.lower() == "basic" and value:
        try:
            username, sep, password = base64.b64decode(value, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise AuthenticationError("The Basic credentials are not valid base64 of user:password.") from exc
        if not sep:
            raise AuthenticationError("The Basic credentials are not of the form user:password.")
        return await auth.from_basic(username, password, client_address(request))
    raise AuthenticationError("This request needs credentials.")


Reader = Annotated[Principal, Depends(_require(Permission.READ))]
Operator = Annotated[Principal, Depends(_require(Permission.OPERATE))]
Admin = Annotated[Principal, Depends(_require(Permission.ADMINISTER))]
