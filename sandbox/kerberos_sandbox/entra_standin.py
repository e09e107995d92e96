"""A local HTTPS stand-in for the Microsoft identity platform, Microsoft Graph, and Entra's
KerberosDomain store (which has no public API; the Kerberos module emulator writes it).

msal talks to it unpatched (``instance_discovery=False`` and the stand-in's CA as ``verify``):
OpenID discovery at ``/{tenant}/v2.0/.well-known/openid-configuration``, the v2.0 token endpoint
with a client secret or a certificate assertion (RS256 with ``x5t``, or PS256 with ``x5t#S256``).
Graph answers in Graph's shapes (``value``, ``@odata.nextLink``, error objects) and fails like the
real service when told to: 401, 403, 429 with Retry-After, 5xx, delays, expired tokens. Used by
the tests, the demo and the benchmarks; ``python -m kerberos_sandbox.entra_standin`` runs it alone.

URLs (one origin serves everything; ``url`` is both the authority host and Graph's URL):

    GET  /{tenant}/v2.0/.well-known/openid-configuration      route "discovery"
    POST /{tenant}/oauth2/v2.0/token                          route "token"
    GET  /v1.0/organization                                   route "graph"
    GET  /v1.0/auditLogs/directoryAudits                      route "graph"
    POST /{tenant}/oauth2/v2.0/devicecode                     route "token" (public client)
    POST /v1.0/users/{id}/checkMemberGroups                   route "graph"
    GET  /v1.0/groups/{id}                                    route "graph"
    GET|PUT|PATCH|DELETE /_emulator/tenants/{tenant}/kerberosDomains/{domainDnsName}   "store"
    POST /_standin/faults, DELETE /_standin/faults, POST /_standin/expire-tokens,
    GET  /_standin/counts, POST /_standin/reset,
    GET  /_standin/device-codes, POST /_standin/device-sign-in admin (header X-Stand-In-Key)
    GET  /{tenant}/oauth2/v2.0/authorize, POST .../login, POST .../mfa   route "token" (sign-in pages)

Approvers sign in with the device-code flow of a second app registration, a public client
(``public_client_id``): ``/devicecode`` starts it, polling ``/token`` answers
``authorization_pending`` until ``people.sign_in(code, upn, mfa=...)`` (or ``decline``/``expire``)
decides it, then an ID token whose ``amr`` holds ``mfa`` only for an MFA sign-in. The same app
signs approvers in through a browser (authorization code flow with PKCE, ``entra_signin_pages``):
register the bot's redirect URI in ``people.redirect_uris``; users sign in with their password
(``entra_people.SANDBOX_PASSWORD``) and the MFA code ``SANDBOX_MFA_CODE``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import secrets
import signal
import ssl
import sys
import tempfile
import uuid
from collections.abc import Iterable
from pathlib import Path

import trustme
from aiohttp import web

from bot.entrypoints.web import start_site
from kerberos_sandbox.entra.admin import AdminApi
from kerberos_sandbox.entra.base import ADMIN_HEADER, GRAPH_ROLES, ROUTES, StandInState, aadsts
from kerberos_sandbox.entra.graph import GraphApi
from kerberos_sandbox.entra.identity import IdentityPlatform
from kerberos_sandbox.entra.kerberos_domains import STORE_FIELDS, KerberosDomainStore, kerberos_domain_json
from kerberos_sandbox.entra_signin_pages import SignInPages

__all__ = ["ADMIN_HEADER", "GRAPH_ROLES", "ROUTES", "STORE_FIELDS", "EntraStandIn", "kerberos_domain_json"]


class EntraStandIn(IdentityPlatform, GraphApi, KerberosDomainStore, AdminApi):
    """``async with EntraStandIn() as entra:``; ``entra.url`` is both authority host and Graph.

    In-process controls (tests): ``register_certificate``, ``put_kerberos_domain``,
    ``delete_kerberos_domain``, ``add_audit_event``, ``clear_data``, ``fail_next``,
    ``clear_faults``, ``expire_tokens``, ``request_counts``, ``reset``; ``state`` for the rest
    (e.g. ``state.roles``). Out of process: the ``/_standin/*`` admin endpoints with ``admin_key``.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        tenant_id: str | None = None,
        *,
        client_id: str | None = None,
        client_secret: str | None = None,
        organization: str = "Contoso (stand-in)",
        verified_domains: Iterable[str] = ("contoso.test",),
    ) -> None:
        self._host, self._port = host, port
        self.state = StandInState(
            tenant_id=tenant_id or str(uuid.uuid4()),
            client_id=client_id or str(uuid.uuid4()),
            client_secret=client_secret or secrets.token_urlsafe(30),
            organization=organization,
            verified_domains=tuple(verified_domains),
        )
        self._initial = (self.state.organization, self.state.verified_domains)
        self.admin_key = secrets.token_urlsafe(16)
        self._signing_key = secrets.token_bytes(32)  # HS256: only the stand-in validates its tokens
        self._dir = tempfile.TemporaryDirectory(prefix="entra-standin-")
        self._ca = trustme.CA()
        self.ca_file = Path(self._dir.name) / "ca.pem"
        self._ca.cert_pem.write_to_path(str(self.ca_file))
        self._runner: web.AppRunner | None = None
        self.url = ""
        self._sign_in_pages = SignInPages(
            self.state.people,
            known_tenant=self._known_tenant,
            client_id=lambda: self.public_client_id,
            client_secret=lambda: self.state.public_client_secret,
            error=aadsts,
            mint=self._user_tokens,
        )

    async def __aenter__(self) -> EntraStandIn:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        app = web.Application(middlewares=[self._faults_middleware])
        self._add_identity_routes(app)
        self._add_graph_routes(app)
        self._add_store_routes(app)
        self._add_admin_routes(app)
        cert = self._ca.issue_cert("127.0.0.1", "localhost", self._host)
        ssl_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        cert.configure_cert(ssl_context)
        self._runner, port = await start_site(app, self._host, self._port, ssl_context=ssl_context)
        host = f"[{self._host}]" if ":" in self._host else self._host
        self.url = f"https://{host}:{port}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        self._dir.cleanup()


async def run_forever(host: str = "127.0.0.1", port: int = 0, tenant_id: str | None = None) -> None:
    """Serve until SIGINT/SIGTERM; prints one JSON line with what a client needs to connect."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):  # not on Windows
            loop.add_signal_handler(sig, stop.set)
    async with EntraStandIn(host, port, tenant_id) as entra:
        info = {
            "url": entra.url,
            "ca_file": str(entra.ca_file),
            "tenant_id": entra.tenant_id,
            "client_id": entra.client_id,
            "client_secret": entra.client_secret,  # a throwaway secret of this sandbox run
            "public_client_id": entra.public_client_id,
            "admin_key": entra.admin_key,
            "admin_header": ADMIN_HEADER,
        }
        sys.stdout.write(json.dumps(info) + "\n")
        sys.stdout.flush()
        await stop.wait()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Local HTTPS stand-in of the Microsoft identity platform and Graph")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0: a free port")
    parser.add_argument("--tenant-id", default=None)
    args = parser.parse_args(argv)
    asyncio.run(run_forever(args.host, args.port, args.tenant_id))


if __name__ == "__main__":
    main()
