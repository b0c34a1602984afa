"""Authentication as the appliance does it: token pairs, bearer access tokens, and HTTP Basic.

An access token is a short-lived JWT (HS256, key in the data directory). A refresh token is an opaque
id stored in the state store; it stays valid until it expires or is deleted, because the refresh call
returns only a new access token, never a new refresh token. Every request re-reads the user, so a
removed user or a changed role takes effect at once, whatever tokens are out.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import jwt

from sddc_backup.domain.clock import Clock
from sddc_backup.domain.errors import AuthenticationError, LoginThrottledError, NotFoundError
from sddc_backup.domain.throttle import LoginThrottle
from sddc_backup.domain.users import Role
from sddc_backup.persistence.users import RefreshTokenStore, UserStore
from sddc_backup.services.audit import audit, bind_actor
from sddc_backup.services.passwords import verify_password

_ALGORITHM = "HS256"


@dataclass(frozen=True)
class Principal:
    username: str
    role: Role


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    refresh_token_id: str


USER_CACHE_TTL = timedelta(seconds=2)  # how stale a user's role or existence may be for a request
USER_CACHE_SIZE = 1024


class Authenticator:
    def __init__(
        self,
        users: UserStore,
        refresh_tokens: RefreshTokenStore,
        clock: Clock,
        signing_key: bytes,
        *,
        access_ttl: timedelta,
        refresh_ttl: timedelta,
        throttle: LoginThrottle,
        basic_cache_ttl: timedelta = timedelta(seconds=30),
        user_cache_ttl: timedelta = USER_CACHE_TTL,
    ) -> None:
        self._users = users
        self._refresh = refresh_tokens
        self._clock = clock
        self._key = signing_key
        self._access_ttl = access_ttl
        self._refresh_ttl = refresh_ttl
        self._throttle = throttle
        # Basic auth sends the password on every request (PowerVCF polls with it); argon2 costs ~0.2 s,
        # so a recent success is remembered under a keyed digest, never the password itself.
        self._basic_ttl = basic_cache_ttl
        self._basic_key = secrets.token_bytes(32)
        self._basic_ok: dict[bytes, datetime] = {}
        # Each request needs the caller's current role. Reading it from the state store costs more
        # than the rest of a task poll; a user read in the last moments is taken as it was.
        self._user_ttl = user_cache_ttl
        self._users_read: dict[str, tuple[Principal, datetime]] = {}

    async def login(self, username: str, password: str, client: str) -> TokenPair:
        principal = await self._check_password(username, password, client)
        now = self._clock.now()
        refresh_id = str(uuid.uuid4())
        await self._refresh.purge_expired(now)
        await self._refresh.add(refresh_id, principal.username, now, now + self._refresh_ttl)
        return TokenPair(self._access_token(principal, now), refresh_id)

    async def refresh(self, refresh_id: str) -> str:
        now = self._clock.now()
        owner = await self._refresh.owner(refresh_id, now)
        valid = owner is not None and await self._users.get(owner) is not None
        who = owner or "anonymous"  # this call carries no credentials but the refresh token
        audit("token.refresh", who, "success" if valid else "failure", actor=who)
        if owner is None or not valid:
            # 404, as the appliance documents for this call.
            raise NotFoundError(
                "The refresh token is unknown or has expired.",
                error_code="REFRESH_TOKEN_NOT_FOUND",
                remediation="Log in again with POST /v1/tokens to get a new token pair.",
            )
        found = await self._users.get(owner)
        assert found is not None  # checked above
        return self._access_token(Principal(found[0].username, found[0].role), now)

    async def revoke(self, refresh_id: str) -> None:
        owner = await self._refresh.owner(refresh_id, self._clock.now())
        removed = await self._refresh.remove(refresh_id)
        who = owner or "anonymous"
        audit("token.revoke", who, "success" if removed else "not found", actor=who)

    async def from_bearer(self, token: str) -> Principal:
        try:
            claims = jwt.decode(
                token,
                self._key,
                algorithms=[_ALGORITHM],
                options={"require": ["exp", "sub"], "verify_iat": False},
                leeway=5,
            )
        except jwt.ExpiredSignatureError as exc:
            raise AuthenticationError(
                "The access token has expired.",
                remediation="Refresh it with PATCH /v1/tokens/access-token/refresh, or log in again.",
            ) from exc
        except jwt.InvalidTokenError as exc:
            raise AuthenticationError("The access token is not valid.") from exc
        return await self._principal(str(claims["sub"]))

    async def from_basic(self, username: str, password: str, client: str) -> Principal:
        digest = hmac.new(self._basic_key, f"{username}\0{password}".encode(), hashlib.sha256).digest()
        now = self._clock.now()
        if self._basic_ok.get(digest, now) > now:
            return await self._principal(username)
        principal = await self._check_password(username, password, client)
        self._basic_ok = {k: v for k, v in self._basic_ok.items() if v > now}
        self._basic_ok[digest] = now + self._basic_ttl
        return principal

    async def _check_password(self, username: str, password: str, client: str) -> Principal:
        key = f"{username}\0{client}"
        now = self._clock.now()
        wait = self._throttle.retry_after(key, now)
        if wait:
            audit("login", username, "throttled", actor=username, client=client)
            raise LoginThrottledError(
                f"Too many failed logins for {username}; try again in {wait} seconds.",
                retry_after_seconds=wait,
            )
        found = await self._users.get(username)
        if not await verify_password(found[1] if found else None, password) or found is None:
            self._throttle.record_failure(key, self._clock.now())
            audit("login", username, "failure", actor=username, client=client)
            raise AuthenticationError(
                "The user name or password is wrong.",
                error_code="INVALID_CREDENTIALS",
                remediation="Check the user name and password. Repeated failures lock the login for a while.",
            )
        self._throttle.record_success(key)
        audit("login", username, "success", actor=username, client=client)
        bind_actor(found[0].username)
        return Principal(found[0].username, found[0].role)

    async def _principal(self, username: str) -> Principal:
        now = self._clock.now()
        cached = self._users_read.get(username)
        if cached is not None and cached[1] > now:
            principal = cached[0]
        else:
            found = await self._users.get(username)
            if found is None:
                self._users_read.pop(username, None)
                raise AuthenticationError("The user of this token no longer exists.")
            principal = Principal(found[0].username, found[0].role)
            if len(self._users_read) > USER_CACHE_SIZE:
                self._users_read = {k: v for k, v in self._users_read.items() if v[1] > now}
            self._users_read[username] = (principal, now + self._user_ttl)
        bind_actor(principal.username)  # who acts in this request, for the audit log
        return principal

    def _access_token(self, principal: Principal, now: datetime) -> str:
        """A signed JWT. ``role`` is for display by clients (``sddc-backup login``); requests read the
        role from the user store again (at most ``USER_CACHE_TTL`` old), so a changed role applies
        within that time."""
        claims = {
            "sub": principal.username,
            "role": principal.role.value,
            "iat": int(now.timestamp()),
            "exp": int((now + self._access_ttl).timestamp()),
            "jti": secrets.token_hex(8),
        }
        return jwt.encode(claims, self._key, algorithm=_ALGORITHM)
