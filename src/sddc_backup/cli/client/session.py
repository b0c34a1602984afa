"""One invocation's session with a server: ``ServerSession``.

It logs in with ``POST /v1/tokens`` on first use and sends the access token as a bearer token. When
the token expires during a long wait it is refreshed once with the refresh token. ``close`` ends the
session on the server (``DELETE /v1/tokens/refresh-token``). Nothing is written to disk: every
invocation logs in again.
"""

from __future__ import annotations

import base64
import json
import ssl
from contextlib import suppress
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from sddc_backup.cli.client import tls
from sddc_backup.cli.client.errors import ClientError, ExitCode, from_response

if TYPE_CHECKING:  # imported on first use: the server builds this command tree too, and never sends
    import httpx2 as httpx

TIMEOUT_S, CONNECT_TIMEOUT_S = 120.0, 15.0  # validations and cancels answer only once done
HOW_TO_PIN = (
    "Pin the certificate with --fingerprint (the server prints 'TLS certificate ... SHA-256 "
    "fingerprint: ...' when it starts) or trust its CA with --ca-cert FILE "
    "(or SDDC_BACKUP_FINGERPRINT / SDDC_BACKUP_CA_CERT)."
)


@dataclass(frozen=True)
class Target:
    """Where the server is and how its certificate is trusted."""

    url: str
    context: tls.PeerCheckingContext

    @property
    def host_port(self) -> tuple[str, int]:
        parts = urlsplit(self.url)
        return parts.hostname or "", parts.port or 443


def normalize_url(text: str) -> str:
    """``https://host[:port]`` from ``text`` (the scheme may be left out); plain HTTP is refused."""
    value = text.strip().rstrip("/")
    if "://" not in value:
        value = "https://" + value
    parts = urlsplit(value)
    if parts.scheme != "https" or not parts.hostname:
        raise ClientError(
            "INVALID_SERVER_URL",
            f"{text!r} is not an https:// server address.",
            "Use --server https://HOST:8443 (or set SDDC_BACKUP_URL); the API is served over HTTPS only.",
            ExitCode.BAD_INPUT,
        )
    return value


@dataclass
class ServerSession:
    """Requests to one server as one user. Every method raises ``ClientError`` on failure."""

    target: Target
    username: str
    password: str = field(repr=False)
    _client: httpx.Client | None = field(default=None, init=False, repr=False)
    _access: str | None = field(default=None, init=False, repr=False)
    _refresh: str | None = field(default=None, init=False, repr=False)

    def __enter__(self) -> ServerSession:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    @property
    def peer_fingerprint(self) -> str | None:
        peer = self.target.context.peer
        return tls.display_fingerprint(peer) if peer else None

    def check_connection(self) -> None:
        """Connect and verify the certificate without credentials; raises only when that fails."""
        try:
            self._send("GET", "/v1/vcf-services")
        except ClientError as exc:
            if exc.exit_code == ExitCode.CONNECTION:
                raise

    def token_claims(self) -> dict[str, object]:
        """The claims of the access token, unverified (the server verifies it; this is for display)."""
        if self._access is None:
            return {}
        try:
            payload = self._access.split(".")[1]
            claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        except (IndexError, ValueError):
            return {}
        return claims if isinstance(claims, dict) else {}

    def login(self) -> None:
        """Exchange the user name and password for tokens (a no-op once logged in)."""
        if self._access is not None:
            return
        body = self._send("POST", "/v1/tokens", json={"username": self.username, "password": self.password})
        try:
            self._access = str(body["accessToken"])
            self._refresh = str(body["refreshToken"]["id"])
        except (KeyError, TypeError):
            raise ClientError(
                "UNEXPECTED_ANSWER",
                f"{self.target.url} answered the login without a token pair.",
                "Check that --server points at an sddc-backup server.",
                ExitCode.FAILED,
            ) from None

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        """An authenticated request; the parsed JSON body, or ``None`` for an empty one."""
        self.login()
        try:
            return self._send(method, path, bearer=True, **kwargs)
        except ClientError as exc:
            if exc.code != "Unauthenticated" or not self._refreshed():
                raise
        return self._send(method, path, bearer=True, **kwargs)

    def close(self) -> None:
        """End the session on the server (best effort) and close the connections."""
        if self._refresh is not None and self._client is not None:
            import httpx2 as httpx

            with suppress(httpx.HTTPError):  # the refresh token expires on its own anyway
                self._client.request("DELETE", "/v1/tokens/refresh-token", json=self._refresh)
        self._access = self._refresh = None
        if self._client is not None:
            self._client.close()
            self._client = None

    def _refreshed(self) -> bool:
        """A new access token from the refresh token; ``False`` when that is not possible."""
        if self._refresh is None:
            return False
        try:
            self._access = str(self._send("PATCH", "/v1/tokens/access-token/refresh", json=self._refresh))
        except ClientError:
            return False
        return True

    def _http(self) -> httpx.Client:
        if self._client is None:
            import httpx2 as httpx

            timeout = httpx.Timeout(TIMEOUT_S, connect=CONNECT_TIMEOUT_S)
            self._client = httpx.Client(
                base_url=self.target.url, verify=self.target.context, timeout=timeout, trust_env=False
            )
        return self._client

    def _send(self, method: str, path: str, bearer: bool = False, **kwargs: Any) -> Any:
        import httpx2 as httpx

        headers = {"Authorization": f"Bearer {self._access}"} if bearer else {}
        try:
            response = self._http().request(method, path, headers=headers, **kwargs)
        except httpx.HTTPError as exc:
            raise self._connection_error(exc) from None
        body: Any = None
        if response.content:
            try:
                body = response.json()
            except (json.JSONDecodeError, UnicodeDecodeError):
                body = None
        if response.status_code >= 400:
            raise from_response(response.status_code, body, response.text)
        return body

    def _connection_error(self, exc: httpx.HTTPError) -> ClientError:
        if tls.find_cause(exc, tls.PinMismatchError) is not None:
            seen = self.peer_fingerprint or "unknown"
            return ClientError(
                "TLS_FINGERPRINT_MISMATCH",
                f"The server at {self.target.url} presented a certificate with SHA-256 fingerprint {seen}, "
                "not the pinned one. Nothing was sent.",
                "Check that --server is right and compare the fingerprint with the one the server prints "
                "at start; if the certificate was replaced on purpose, pin the new one with --fingerprint.",
                ExitCode.CONNECTION,
            )
        untrusted = tls.find_cause(exc, ssl.SSLCertVerificationError)
        if untrusted is not None:
            presented = tls.presented_fingerprint(*self.target.host_port)
            shown = tls.display_fingerprint(presented) if presented else "unknown"
            return ClientError(
                "TLS_CERTIFICATE_UNTRUSTED",
                f"The server's TLS certificate is not trusted ({untrusted.verify_message or untrusted}). "
                f"It presents SHA-256 fingerprint {shown}. Nothing was sent.",
                HOW_TO_PIN,
                ExitCode.CONNECTION,
            )
        return ClientError(
            "SERVER_UNREACHABLE",
            f"Cannot talk to {self.target.url}: {exc or type(exc).__name__}.",
            "Check --server (or SDDC_BACKUP_URL), that the server runs, and the network between.",
            ExitCode.CONNECTION,
        )
