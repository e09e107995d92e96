"""One LDAP(S) connection to a domain's pool of DCs, shared by the AD adapter and the emulator.

ldap3 blocks, so every operation runs in a worker thread behind a lock (one ldap3 connection is
not safe for concurrent use). Library exceptions become ``DirectoryError``s here, at the boundary.
"""

from __future__ import annotations

import contextlib
import logging
import math
import re
import socket
import ssl
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlparse

from ldap3 import AUTO_BIND_NONE, NONE, Connection, Server, Tls
from ldap3.core import exceptions as ldap_exc

from bot.adapters.threads import run_in
from bot.domain.errors import (
    DirectoryAuthError,
    DirectoryError,
    DirectoryTimeout,
    DirectoryUnavailable,
)

T = TypeVar("T")

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LdapEndpoint:
    """How to reach and bind to one domain's DCs."""

    domain_dns_name: str
    base_dn: str
    ldap_urls: Sequence[str]
    bind_user: str
    bind_password: str
    ca_file: Path | None = None
    tls_validate: bool = True
    connect_timeout: float = 5.0
    operation_timeout: float = 10.0
    # the password read anew from its source (a file, Azure Key Vault) when the DCs refuse it: a password
    # rotated there is taken without a restart
    bind_password_again: Callable[[], str] | None = None

    def __repr__(self) -> str:  # never print the password
        return f"LdapEndpoint({self.domain_dns_name!r}, urls={list(self.ldap_urls)!r}, user={self.bind_user!r})"

    def tls(self) -> Tls:
        if self.tls_validate:
            return Tls(
                validate=ssl.CERT_REQUIRED,
                ca_certs_file=str(self.ca_file) if self.ca_file else None,
                version=ssl.PROTOCOL_TLS_CLIENT,
            )
        return Tls(validate=ssl.CERT_NONE, version=ssl.PROTOCOL_TLS_CLIENT)

    def server(self, url: str) -> Server:
        parsed = urlparse(url)
        secure = parsed.scheme == "ldaps"
        return Server(
            parsed.hostname or url,
            port=parsed.port or (636 if secure else 389),
            use_ssl=secure,
            tls=self.tls(),
            get_info=NONE,  # no schema/DSE reads on connect: they cost LDAP operations
            connect_timeout=self.connect_timeout,
        )


# AD's "data <code>" in an invalidCredentials answer (the sub-status of AcceptSecurityContext)
_BIND_REASONS = {
    "52e": "the password was refused (wrong password, data 52e)",
    "525": "no such user (data 525)",
    "530": "logon not permitted at this time (data 530)",
    "531": "logon not permitted from this workstation (data 531)",
    "532": "the password has expired (data 532)",
    "533": "the account is disabled (data 533)",
    "701": "the account has expired (data 701)",
    "773": "the password must be changed (data 773)",
    "775": "the account is locked out (data 775)",
}
_BIND_REASON_UNKNOWN = "the password was refused, or the account is disabled, expired or locked"


def _looks_like_timeout(exc: BaseException) -> bool:
    text = str(exc).lower()
    return isinstance(exc, socket.timeout | TimeoutError) or "timed out" in text or "timeout" in text


def _discard(conn: Connection) -> None:
    """Unbind and close: after a failed connect or a broken socket ldap3's unbind leaves the socket open."""
    with contextlib.suppress(Exception):
        conn.unbind()
    sock = getattr(conn, "socket", None)
    if sock is not None:
        with contextlib.suppress(Exception):
            sock.close()


class LdapSession:
    """A lazily bound connection over the domain's DC pool, reconnected when it drops."""

    def __init__(self, endpoint: LdapEndpoint, urls: Sequence[str] | None = None) -> None:
        self.endpoint = endpoint
        self._urls = list(urls if urls is not None else endpoint.ldap_urls)
        self._lock = threading.Lock()
        self._conn: Connection | None = None
        self._password = endpoint.bind_password  # the current one: read anew when the DCs refuse it
        self.operations = 0  # cumulative LDAP operations (binds + searches + writes), for benchmarks

    @property
    def urls(self) -> list[str]:
        return list(self._urls)

    def _connect(self) -> Connection:
        """Bind to the first DC that answers, in the configured order (a down DC is skipped); a refused
        password is read anew from its source once, and used when it changed (rotated there).

        Done here rather than with ldap3's ServerPool, which sleeps 10 s before giving up.
        """
        try:
            return self._connect_any()
        except (ldap_exc.LDAPInvalidCredentialsResult, ldap_exc.LDAPBindError):
            again = self.endpoint.bind_password_again
            if again is None:
                raise
            newer = again()
            if newer == self._password:
                raise
            log.info("the bind password of %s changed at its source; binding with the new one", self.endpoint.bind_user)
            self._password = newer
            return self._connect_any()

    def _connect_any(self) -> Connection:
        last: Exception | None = None
        for url in self._urls:
            try:
                return self._connect_one(url)
            except (
                ldap_exc.LDAPSocketOpenError,
                ldap_exc.LDAPSocketReceiveError,
                ldap_exc.LDAPStartTLSError,
                ldap_exc.LDAPSessionTerminatedByServerError,
                OSError,
            ) as exc:
                last = exc  # this DC does not answer (or its TLS fails): try the next one
        assert last is not None
        raise last

    def _connect_one(self, url: str) -> Connection:
        ep = self.endpoint
        conn = Connection(
            ep.server(url),
            user=ep.bind_user,
            password=self._password,
            auto_bind=AUTO_BIND_NONE,
            receive_timeout=max(1, math.ceil(ep.operation_timeout)),  # ldap3 packs it as an integer
            raise_exceptions=True,
            read_only=False,
            return_empty_attributes=False,
        )
        # Opened by hand: with auto_bind, a failed TLS or bind leaves ldap3's socket open.
        try:
            conn.open(read_server_info=False)
            if urlparse(url).scheme == "ldap":
                conn.start_tls(read_server_info=False)  # never a simple bind in clear text
            self.operations += 1  # the bind
            conn.bind(read_server_info=False)
        except BaseException:
            _discard(conn)
            raise
        return conn

    def answering_host(self) -> str:
        conn = self._conn
        return str(conn.server.host) if conn is not None and conn.server is not None else "?"

    def _run_locked(self, operation: Callable[[Connection], T]) -> tuple[T, int]:
        """``operation``'s result and how many LDAP operations it took, a (re)bind included."""
        with self._lock:
            before = self.operations  # read under the lock: concurrent callers do not blur the count
            for attempt in (1, 2):
                if self._conn is None or self._conn.closed:
                    self._conn = self._connect()
                try:
                    return operation(self._conn), self.operations - before
                except (ldap_exc.LDAPSessionTerminatedByServerError, ldap_exc.LDAPSocketSendError) as exc:
                    # a DC restarted or dropped idle connections: reconnect once
                    self._drop()
                    if attempt == 2:
                        raise exc
                except ldap_exc.LDAPSocketReceiveError:
                    self._drop()  # a timed-out answer may still arrive later: never reuse that socket
                    raise
            raise AssertionError("unreachable")

    def _drop(self) -> None:
        if self._conn is not None:
            _discard(self._conn)
        self._conn = None

    def run_counted_sync(self, operation: Callable[[Connection], T]) -> tuple[T, int]:
        """Run ``operation(conn)`` with the library's errors translated; also count its LDAP operations."""
        try:
            return self._run_locked(operation)
        except DirectoryError:
            raise
        except Exception as exc:
            raise self.translate(exc) from exc

    def run_sync(self, operation: Callable[[Connection], T]) -> T:
        return self.run_counted_sync(operation)[0]

    async def run(self, operation: Callable[[Connection], T]) -> T:
        return await run_in("ldap", self.run_sync, operation)

    async def run_counted(self, operation: Callable[[Connection], T]) -> tuple[T, int]:
        return await run_in("ldap", self.run_counted_sync, operation)

    def search(
        self, conn: Connection, base: str, ldap_filter: str, scope: str, attributes: Sequence[str]
    ) -> list[dict[str, Any]]:
        """A search whose entries are ``{"dn": ..., "raw": {attribute: [bytes, ...]}}``."""
        self.operations += 1
        conn.search(base, ldap_filter, scope, attributes=list(attributes))
        return [
            {"dn": item["dn"], "raw": {k.lower(): v for k, v in item["raw_attributes"].items()}}
            for item in conn.response or []
            if item.get("type") == "searchResEntry"
        ]

    def translate(self, exc: BaseException) -> DirectoryError:
        ep = self.endpoint
        tried = ", ".join(self._urls)
        if isinstance(exc, ldap_exc.LDAPInvalidCredentialsResult) or (
            isinstance(exc, ldap_exc.LDAPBindError) and "invalidcredentials" in str(exc).lower().replace(" ", "")
        ):
            # AD names the reason in the "data <code>" part of its message; the password is never echoed
            match = re.search(r"data ([0-9a-f]{3})", str(exc).lower())
            reason = _BIND_REASONS.get(match.group(1) if match else "", _BIND_REASON_UNKNOWN)
            return DirectoryAuthError(f"The DCs of {ep.domain_dns_name} refused the bind of {ep.bind_user}: {reason}.")
        if isinstance(exc, ldap_exc.LDAPBindError):
            return DirectoryAuthError(f"The bind of {ep.bind_user} to {ep.domain_dns_name} failed.")
        if isinstance(exc, ldap_exc.LDAPSocketOpenError) and "ssl wrapping" not in str(exc):
            # no TCP connection at all (refused, unreachable, or no SYN-ACK within connect_timeout): not a
            # DC that accepted and then hung, which is what DirectoryTimeout means
            return DirectoryUnavailable(f"No domain controller of {ep.domain_dns_name} answered (tried {tried}).")
        if _looks_like_timeout(exc):
            return DirectoryTimeout(
                f"A DC of {ep.domain_dns_name} did not answer within {ep.operation_timeout:g} s (tried {tried})."
            )
        if isinstance(exc, ldap_exc.LDAPStartTLSError | ssl.SSLError) or "certificate" in str(exc).lower():
            return DirectoryUnavailable(
                f"TLS to the DCs of {ep.domain_dns_name} failed (tried {tried}): the certificate was not "
                "trusted; check ca_file."
            )
        if isinstance(
            exc,
            ldap_exc.LDAPSocketOpenError
            | ldap_exc.LDAPServerPoolExhaustedError
            | ldap_exc.LDAPSessionTerminatedByServerError
            | ldap_exc.LDAPSocketSendError
            | ldap_exc.LDAPSocketReceiveError
            | ldap_exc.LDAPCommunicationError
            | OSError,
        ):
            return DirectoryUnavailable(f"No domain controller of {ep.domain_dns_name} answered (tried {tried}).")
        if isinstance(exc, ldap_exc.LDAPInsufficientAccessRightsResult):
            return DirectoryError(f"{ep.bind_user} lacks the rights for this operation in {ep.domain_dns_name}.")
        if isinstance(exc, ldap_exc.LDAPOperationResult):
            return DirectoryError(f"{ep.domain_dns_name} refused the operation: {exc.description} ({exc.result}).")
        return DirectoryError(f"LDAP error talking to {ep.domain_dns_name}: {type(exc).__name__}.")

    def close_sync(self) -> None:
        with self._lock:
            self._drop()

    async def close(self) -> None:
        await run_in("ldap", self.close_sync)
