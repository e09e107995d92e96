"""A local HTTPS stand-in for the Microsoft identity platform, Microsoft Graph, and Entra's
KerberosDomain store (which has no public API; the Kerberos module emulator writes it).

msal talks to it unpatched (``instance_discovery=False`` and the stand-in's CA as ``verify``):
OpenID discovery at ``/{tenant}/v2.0/.well-known/openid-configuration``, the v2.0 token endpoint
with a client secret or a certificate assertion (RS256 with ``x5t``, or PS256 with ``x5t#S256``).
Graph answers in Graph's shapes (``value``, ``@odata.nextLink``, error objects) and fails like the
real service when told to: 401, 403, 429 with Retry-After, 5xx, delays, expired tokens. Used by
the tests, the demo and the benchmarks; ``python -m bot.sandbox.entra_standin`` runs it alone.

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
import base64
import contextlib
import json
import re
import secrets
import signal
import ssl
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import jwt
import trustme
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from bot.adapters.kerberos_module.emulator.cloud_store import domain_to_json
from bot.domain.model import CloudKerberosDomain
from bot.entrypoints.web import start_site
from bot.sandbox.entra_people import EntraPeople, StandInUser
from bot.sandbox.entra_signin_pages import SignInPages

GRAPH_RESOURCE = "https://graph.microsoft.com"
GRAPH_ROLES = ("AuditLog.Read.All", "Organization.Read.All", "GroupMember.Read.All")
DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
TOKEN_LIFETIME = 3599  # what the identity platform grants an app-only token
ROUTES = ("discovery", "token", "graph", "store")
ADMIN_HEADER = "X-Stand-In-Key"
STORE_FIELDS = ("id", "displayName", "domainDnsName", "keyVersion", "keyUpdatedOn", "trustDisplay", "topLevelNames")
ACTIVITIES = ("Add kerberos domain", "Update kerberos domain", "Delete kerberos domain", "Restore kerberos domain")

Predicate = Callable[[dict[str, Any]], bool]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Fault:
    status: int | None = None  # answer with this status (None: only delay)
    retry_after: float | None = None
    delay: float = 0.0


@dataclass
class StandInState:
    tenant_id: str
    client_id: str
    client_secret: str
    organization: str = "Contoso (stand-in)"
    verified_domains: tuple[str, ...] = ("contoso.test",)
    roles: tuple[str, ...] = GRAPH_ROLES  # application permissions granted (with consent) to the app
    certificates: dict[str, str] = field(default_factory=dict)  # x5t or x5t#S256 -> public PEM
    audit_events: list[dict[str, Any]] = field(default_factory=list)
    kerberos_domains: dict[str, dict[str, Any]] = field(default_factory=dict)  # by lower-case DNS name
    faults: dict[str, list[Fault]] = field(default_factory=dict)
    counts: Counter[str] = field(default_factory=Counter)
    tokens_issued: int = 0
    token_epoch: int = 0  # tokens minted in an earlier epoch count as expired
    public_client_id: str = field(default_factory=lambda: str(uuid.uuid4()))  # approvers' sign-in app
    public_client_secret: str | None = None  # set: the approvers' app is a confidential (web) client
    people: EntraPeople = field(default_factory=EntraPeople)


def _graph_error(status: int, code: str, message: str) -> web.Response:
    response = web.json_response(
        {
            "error": {
                "code": code,
                "message": message,
                "innerError": {"date": _iso(datetime.now(UTC)), "request-id": str(uuid.uuid4())},
            }
        },
        status=status,
    )
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="", error="invalid_token"'
    return response


def _aadsts(status: int, error: str, code: int | None, text: str) -> web.Response:
    """The identity platform's OAuth error body (AADSTS code in the text and in error_codes)."""
    trace = uuid.uuid4()
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    body: dict[str, Any] = {
        "error": error,
        "error_description": (f"AADSTS{code}: " if code else "")
        + f"{text} Trace ID: {trace} Correlation ID: {uuid.uuid4()} Timestamp: {when}",
        "timestamp": when,
        "trace_id": str(trace),
    }
    if code:
        body["error_codes"] = [code]
    return web.json_response(body, status=status)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _x5t(digest: bytes) -> str:
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def _valid_domain_json(body: object) -> str | None:
    """None when ``body`` is a complete KerberosDomain, else what is wrong."""
    if not isinstance(body, dict):
        return "the body must be a JSON object"
    missing = [f for f in STORE_FIELDS if f not in body]
    if missing:
        return f"missing properties: {', '.join(missing)}"
    if not isinstance(body["id"], int) or not isinstance(body["keyVersion"], int):
        return "id and keyVersion must be integers"
    try:
        datetime.fromisoformat(str(body["keyUpdatedOn"]).replace("Z", "+00:00"))
    except ValueError:
        return "keyUpdatedOn must be an ISO 8601 time"
    if not isinstance(body["topLevelNames"], list):
        return "topLevelNames must be a list"
    return None


class EntraStandIn:
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
            error=_aadsts,
            mint=self._user_tokens,
        )

    # -- identity of the registered app ---------------------------------------------------------
    @property
    def tenant_id(self) -> str:
        return self.state.tenant_id

    @property
    def client_id(self) -> str:
        return self.state.client_id

    @property
    def client_secret(self) -> str:
        return self.state.client_secret

    @property
    def public_client_id(self) -> str:
        return self.state.public_client_id

    @property
    def people(self) -> EntraPeople:
        """Users, groups and device-code sign-ins (``sign_in``, ``decline``, ``expire``)."""
        return self.state.people

    @property
    def authority(self) -> str:
        return f"{self.url}/{self.tenant_id}"

    @property
    def token_endpoint(self) -> str:
        return f"{self.authority}/oauth2/v2.0/token"

    @property
    def store_url(self) -> str:
        """Base of this tenant's KerberosDomain store (``/{domainDnsName}`` follows)."""
        return f"{self.url}/_emulator/tenants/{self.tenant_id}/kerberosDomains"

    def register_certificate(self, public_pem: bytes) -> str:
        """Register an app certificate; returns its SHA-1 thumbprint (hex), as the portal shows it.

        Assertions may name it by ``x5t`` (SHA-1, RS256) or ``x5t#S256`` (SHA-256, PS256).
        """
        cert = x509.load_pem_x509_certificate(public_pem)
        sha1 = cert.fingerprint(hashes.SHA1())
        self.state.certificates[_x5t(sha1)] = public_pem.decode()
        self.state.certificates[_x5t(cert.fingerprint(hashes.SHA256()))] = public_pem.decode()
        return sha1.hex().upper()

    # -- seeding --------------------------------------------------------------------------------
    def put_kerberos_domain(self, domain: CloudKerberosDomain | dict[str, Any], *, audit: bool = False) -> None:
        """Create or replace a KerberosDomain as if the module had written it (no audit by default)."""
        body = domain_to_json(domain) if isinstance(domain, CloudKerberosDomain) else dict(domain)
        problem = _valid_domain_json(body)
        if problem:
            raise ValueError(problem)
        self._write_domain(str(body["domainDnsName"]).lower(), body, initiated_by=None, audit=audit)

    def delete_kerberos_domain(self, domain_dns_name: str, *, audit: bool = False) -> bool:
        key = domain_dns_name.lower()
        found = self.state.kerberos_domains.pop(key, None) is not None
        if found and audit:
            self.add_audit_event(key, "Delete kerberos domain", datetime.now(UTC))
        return found

    def kerberos_domain(self, domain_dns_name: str) -> dict[str, Any] | None:
        found = self.state.kerberos_domains.get(domain_dns_name.lower())
        return dict(found) if found is not None else None

    def add_audit_event(
        self,
        domain: str,
        activity: str,
        at: datetime,
        *,
        initiated_by_user: str | None = None,
        initiated_by_app: str | None = None,
        result: str = "success",
        category: str = "KerberosDomain",
    ) -> dict[str, Any]:
        """Record a directory audit event (category ``KerberosDomain`` unless told), in Graph's shape.

        The initiator is the user when given, else an app (default: this app, "kerberos-bot").
        """
        if initiated_by_user:
            initiated: dict[str, Any] = {
                "user": {
                    "id": str(uuid.uuid4()),
                    "displayName": None,
                    "userPrincipalName": initiated_by_user,
                    "ipAddress": "",
                    "userType": None,
                    "homeTenantId": None,
                    "homeTenantName": None,
                },
                "app": None,
            }
        else:
            initiated = {
                "user": None,
                "app": {
                    "appId": self.client_id,
                    "displayName": initiated_by_app or "kerberos-bot",
                    "servicePrincipalId": str(uuid.uuid4()),
                    "servicePrincipalName": None,
                },
            }
        event = {
            "id": f"Directory_{uuid.uuid4().hex[:5].upper()}_{uuid.uuid4().hex[:8]}",
            "category": category,
            "correlationId": str(uuid.uuid4()),
            "result": result,
            "resultReason": "",
            "activityDisplayName": activity,
            "activityDateTime": _iso(at),
            "loggedByService": "Core Directory",
            "operationType": activity.split(" ", 1)[0],
            "initiatedBy": initiated,
            "targetResources": [
                {
                    "id": str(uuid.uuid4()),
                    "displayName": domain,
                    "type": "Other",
                    "userPrincipalName": None,
                    "groupType": None,
                    "modifiedProperties": [],
                }
            ],
            "additionalDetails": [],
        }
        self.state.audit_events.append(event)
        return event

    def clear_data(self) -> None:
        """Forget KerberosDomains, audit events and registered certificates; restore tenant and roles."""
        self.state.audit_events.clear()
        self.state.kerberos_domains.clear()
        self.state.certificates.clear()
        self.state.organization, self.state.verified_domains = self._initial
        self.state.roles = GRAPH_ROLES
        self.state.people.clear()

    # -- fault injection and counters -----------------------------------------------------------
    def fail_next(
        self,
        route: str,
        status: int | None = None,
        *,
        count: int = 1,
        retry_after: float | None = None,
        delay: float = 0.0,
    ) -> None:
        """The next ``count`` requests on ``route`` ("discovery", "token", "graph", "store") answer
        ``status`` (with Retry-After when given) after ``delay`` seconds; ``status=None`` only
        delays, then answers normally (for timeouts)."""
        if route not in ROUTES:
            raise ValueError(f"route must be one of {', '.join(ROUTES)}")
        self.state.faults.setdefault(route, []).extend(Fault(status, retry_after, delay) for _ in range(count))

    def clear_faults(self) -> None:
        self.state.faults.clear()

    def expire_tokens(self) -> None:
        """Every token issued so far is now expired (Graph and the store answer 401 'token is expired')."""
        self.state.token_epoch += 1

    def request_counts(self) -> dict[str, int]:
        """Requests received per route ("discovery", "token", "graph", "store"), faults included."""
        return {route: self.state.counts[route] for route in ROUTES}

    def reset(self) -> None:
        """Between tests: data, faults and counters. Issued tokens stay expired if they were."""
        self.clear_data()
        self.clear_faults()
        self.state.counts.clear()
        self.state.tokens_issued = 0

    # -- server ---------------------------------------------------------------------------------
    async def __aenter__(self) -> EntraStandIn:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        app = web.Application(middlewares=[self._faults_middleware])
        t = "/{tenant}"
        app.router.add_get(t + "/v2.0/.well-known/openid-configuration", self._discovery)
        app.router.add_post(t + "/oauth2/v2.0/token", self._token)
        app.router.add_post(t + "/oauth2/v2.0/devicecode", self._devicecode)
        app.router.add_routes(self._sign_in_pages.routes(t))
        app.router.add_post("/v1.0/users/{user}/checkMemberGroups", self._check_member_groups)
        app.router.add_get("/v1.0/groups/{group}", self._group)
        app.router.add_get("/v1.0/organization", self._organization)
        app.router.add_get("/v1.0/auditLogs/directoryAudits", self._audits)
        store = "/_emulator/tenants/{tenant}/kerberosDomains/{domain}"
        app.router.add_get(store, self._store_get)
        app.router.add_put(store, self._store_put)
        app.router.add_patch(store, self._store_patch)
        app.router.add_delete(store, self._store_delete)
        app.router.add_post("/_standin/faults", self._admin_faults)
        app.router.add_delete("/_standin/faults", self._admin_clear_faults)
        app.router.add_post("/_standin/expire-tokens", self._admin_expire)
        app.router.add_get("/_standin/counts", self._admin_counts)
        app.router.add_post("/_standin/reset", self._admin_reset)
        app.router.add_get("/_standin/device-codes", self._admin_device_codes)
        app.router.add_post("/_standin/device-sign-in", self._admin_device_sign_in)
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

    @staticmethod
    def _route_of(path: str) -> str:
        if path.startswith("/v1.0/"):
            return "graph"
        if path.startswith("/_emulator/"):
            return "store"
        if path.startswith("/_standin/"):
            return "admin"
        return "discovery" if path.endswith("openid-configuration") else "token"

    @web.middleware
    async def _faults_middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        route = self._route_of(request.path)
        if route == "admin":
            if not secrets.compare_digest(request.headers.get(ADMIN_HEADER, ""), self.admin_key):
                return web.json_response({"error": f"missing or wrong {ADMIN_HEADER}"}, status=403)
            return await handler(request)
        self.state.counts[route] += 1
        queue = self.state.faults.get(route)
        if queue:
            fault = queue.pop(0)
            if fault.delay:
                await asyncio.sleep(fault.delay)
            if fault.status is not None:
                response = self._fault_response(route, fault.status)
                if fault.retry_after is not None:
                    response.headers["Retry-After"] = f"{fault.retry_after:g}"
                return response
        return await handler(request)

    @staticmethod
    def _fault_response(route: str, status: int) -> web.Response:
        if route in ("token", "discovery"):
            if status == 400:
                return _aadsts(400, "invalid_request", 90002, "Tenant not found.")
            if status == 401:
                return _aadsts(401, "invalid_client", 7000222, "The provided client secret keys for app are expired.")
            if status == 403:
                return _aadsts(403, "unauthorized_client", 7000112, "Application is disabled.")
            if status == 429:
                return _aadsts(429, "temporarily_unavailable", None, "Too many requests; retry after the given time.")
            return _aadsts(status, "temporarily_unavailable", None, "The service is temporarily unavailable.")
        code, message = {
            400: ("BadRequest", "Injected fault."),
            401: ("InvalidAuthenticationToken", "Access token validation failure."),
            403: ("Authorization_RequestDenied", "Insufficient privileges to complete the operation."),
            404: ("Request_ResourceNotFound", "Resource not found."),
            429: ("TooManyRequests", "Too many requests."),
            500: ("InternalServerError", "Internal server error."),
            502: ("BadGateway", "Bad gateway."),
            503: ("ServiceUnavailable", "Service is unavailable."),
            504: ("GatewayTimeout", "Gateway timeout."),
        }.get(status, ("UnknownError", "Injected fault."))
        return _graph_error(status, code, message)

    # -- identity platform ----------------------------------------------------------------------
    def _known_tenant(self, tenant: str) -> bool:
        # The tenant may be named by id or by a verified domain, as in the real authority URL.
        return tenant.lower() in (self.tenant_id.lower(), *(d.lower() for d in self.state.verified_domains))

    async def _discovery(self, request: web.Request) -> web.Response:
        tenant = request.match_info["tenant"]
        if not self._known_tenant(tenant):
            return _aadsts(
                400,
                "invalid_tenant",
                90002,
                f"Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are "
                "signing into the correct cloud.",
            )
        base = f"{self.url}/{tenant}"
        return web.json_response(
            {
                "token_endpoint": f"{base}/oauth2/v2.0/token",
                "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
                "issuer": f"{self.url}/{self.tenant_id}/v2.0",
                "jwks_uri": f"{base}/discovery/v2.0/keys",
                "token_endpoint_auth_methods_supported": [
                    "client_secret_post",
                    "private_key_jwt",
                    "client_secret_basic",
                ],
                "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
                "scopes_supported": ["openid", "profile", "email", "offline_access"],
                "subject_types_supported": ["pairwise"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "tenant_region_scope": "EU",
                "cloud_instance_name": "microsoftonline.com",
            }
        )

    def _check_assertion(self, assertion: str, token_endpoint: str) -> tuple[int, str] | None:
        """None when the certificate assertion is valid, else (AADSTS code, reason)."""
        try:
            header = jwt.get_unverified_header(assertion)
        except jwt.PyJWTError:
            return 700027, "Client assertion is not a valid JWT."
        kid = str(header.get("x5t#S256") or header.get("x5t") or "").rstrip("=")
        pem = self.state.certificates.get(kid)
        if pem is None:
            return (
                700027,
                "The certificate with identifier used to sign the client assertion is not registered on application.",
            )
        public_key = x509.load_pem_x509_certificate(pem.encode()).public_key()
        try:
            claims = jwt.decode(
                assertion,
                public_key,  # type: ignore[arg-type]
                algorithms=["RS256", "PS256"],
                options={"verify_aud": False, "require": ["exp", "aud", "iss", "sub"]},
            )
        except jwt.ExpiredSignatureError:
            return 700024, "Client assertion is not within its valid time range."
        except jwt.PyJWTError as exc:
            return 700027, f"Client assertion failed signature validation ({type(exc).__name__})."
        if claims.get("aud") != token_endpoint:
            return 700023, "Client assertion audience claim does not match Realm issuer."
        if claims.get("iss") != self.client_id or claims.get("sub") != self.client_id:
            return 700021, "Client assertion application identifier doesn't match 'client_id' parameter."
        return None

    async def _token(self, request: web.Request) -> web.Response:
        tenant = request.match_info["tenant"]
        if not self._known_tenant(tenant):
            return _aadsts(400, "invalid_request", 90002, f"Tenant '{tenant}' not found.")
        form = await request.post()
        if form.get("grant_type") == "authorization_code":
            return self._sign_in_pages.redeem(form)
        if form.get("grant_type") == DEVICE_CODE_GRANT:
            return self._device_code_token(tenant, str(form.get("client_id") or ""), str(form.get("device_code") or ""))
        if form.get("grant_type") != "client_credentials":
            return _aadsts(400, "unsupported_grant_type", 70003, "The app requested an unsupported grant type.")
        client_id = str(form.get("client_id") or "")
        if client_id != self.client_id:
            return _aadsts(
                400,
                "unauthorized_client",
                700016,
                f"Application with identifier '{client_id}' was not found in the directory "
                f"'{self.state.organization}'.",
            )
        scope = str(form.get("scope") or "")
        if not scope.endswith("/.default"):
            return _aadsts(400, "invalid_scope", 1002012, f"The provided value for scope {scope} is not valid.")
        assertion = form.get("client_assertion")
        if isinstance(assertion, str):
            problem = self._check_assertion(assertion, f"{self.url}/{tenant}/oauth2/v2.0/token")
            if problem:
                return _aadsts(401, "invalid_client", *problem)
        elif not secrets.compare_digest(str(form.get("client_secret") or ""), self.client_secret):
            return _aadsts(
                401,
                "invalid_client",
                7000215,
                "Invalid client secret provided. Ensure the secret being sent in the request is the client "
                f"secret value, not the client secret ID, for a secret added to app '{self.client_id}'.",
            )
        now = int(time.time())
        audience = scope.removesuffix("/.default").rstrip("/")
        self.state.tokens_issued += 1
        access_token = jwt.encode(
            {
                "aud": audience,
                "iss": f"https://sts.windows.net/{self.tenant_id}/",
                "iat": now,
                "nbf": now,
                "exp": now + TOKEN_LIFETIME,
                "appid": self.client_id,
                "tid": self.tenant_id,
                "epoch": self.state.token_epoch,
                "roles": list(self.state.roles),
                "idtyp": "app",
                "uti": uuid.uuid4().hex,
            },
            self._signing_key,
            algorithm="HS256",
        )
        return web.json_response(
            {
                "token_type": "Bearer",
                "expires_in": TOKEN_LIFETIME,
                "ext_expires_in": TOKEN_LIFETIME,
                "access_token": access_token,
            }
        )

    # -- device-code flow (approvers) -------------------------------------------------------------
    def _public_client_problem(self, client_id: str) -> web.Response | None:
        if client_id == self.public_client_id:
            return None
        if client_id == self.client_id:  # the bot's confidential app: public client flows are off
            return _aadsts(
                401,
                "invalid_client",
                7000218,
                "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
            )
        return _aadsts(
            400,
            "unauthorized_client",
            700016,
            f"Application with identifier '{client_id}' was not found in the directory '{self.state.organization}'.",
        )

    async def _devicecode(self, request: web.Request) -> web.Response:
        tenant = request.match_info["tenant"]
        if not self._known_tenant(tenant):
            return _aadsts(400, "invalid_request", 90002, f"Tenant '{tenant}' not found.")
        form = await request.post()
        problem = self._public_client_problem(str(form.get("client_id") or ""))
        if problem is not None:
            return problem
        grant = self.people.start_grant(self.public_client_id, str(form.get("scope") or ""))
        page = f"{self.url}/devicelogin"
        code = grant.user_code
        return web.json_response(
            {
                "user_code": code,
                "device_code": grant.device_code,
                "verification_uri": page,
                "expires_in": str(self.people.device_code_lifetime),  # Entra sends these as strings
                "interval": str(grant.interval),
                "message": f"To sign in, use a web browser to open the page {page} and enter the code {code} "
                "to authenticate.",
            }
        )

    def _device_code_token(self, tenant: str, client_id: str, device_code: str) -> web.Response:
        problem = self._public_client_problem(client_id)
        if problem is not None:
            return problem
        grant = self.people.grants.get(device_code)
        if grant is None or grant.redeemed:
            return _aadsts(400, "invalid_grant", 70000, "The provided value for the 'device_code' is not valid.")
        grant.polls += 1
        if time.time() >= grant.expires_at:
            return _aadsts(
                400,
                "expired_token",
                70020,
                "The provided value for the input parameter 'device_code' is not valid. This device code has expired.",
            )
        if grant.outcome == "pending":
            return _aadsts(
                400,
                "authorization_pending",
                70016,
                "OAuth 2.0 device flow error. Authorization is pending. Continue polling.",
            )
        if grant.outcome != "signed_in":
            reasons = {
                "authorization_declined": (70019, "The end user declined the authorization request."),
                "access_denied": (53003, "Access has been blocked by Conditional Access policies."),
            }
            code, text = reasons.get(grant.outcome, (70000, "The sign-in failed."))
            return _aadsts(400, grant.outcome, code, text)
        grant.redeemed = True
        assert grant.user is not None
        now = int(time.time())
        return web.json_response(
            self._user_tokens(
                grant.user, grant.scope, {"auth_time": now, "amr": ["pwd", "mfa"] if grant.mfa else ["pwd"]}
            )
        )

    def _user_tokens(self, user: StandInUser, scope: str, id_claims: dict[str, Any]) -> dict[str, Any]:
        """Tokens of a user sign-in; ``id_claims`` adds what the flow decides (amr, auth_time, nonce, acrs)."""
        now = int(time.time())
        common = {"iat": now, "nbf": now, "exp": now + TOKEN_LIFETIME, "tid": self.tenant_id, "oid": user.object_id}
        id_token = jwt.encode(
            {
                **common,
                "aud": self.public_client_id,
                "iss": f"{self.url}/{self.tenant_id}/v2.0",
                "sub": uuid.uuid5(uuid.NAMESPACE_URL, user.object_id + self.public_client_id).hex,
                "ver": "2.0",
                "name": user.display_name,
                "preferred_username": user.upn,
                "email": user.mail,
                **id_claims,
            },
            self._signing_key,
            algorithm="HS256",
        )
        access_token = jwt.encode(
            {
                **common,
                "aud": GRAPH_RESOURCE,
                "iss": f"https://sts.windows.net/{self.tenant_id}/",
                "scp": scope,
                "appid": self.public_client_id,
                "upn": user.upn,
                "epoch": self.state.token_epoch,
            },
            self._signing_key,
            algorithm="HS256",
        )
        client_info = (
            base64.urlsafe_b64encode(json.dumps({"uid": user.object_id, "utid": self.tenant_id}).encode())
            .decode()
            .rstrip("=")
        )
        return {
            "token_type": "Bearer",
            "scope": scope,
            "expires_in": TOKEN_LIFETIME,
            "ext_expires_in": TOKEN_LIFETIME,
            "access_token": access_token,
            "refresh_token": secrets.token_urlsafe(40),
            "id_token": id_token,
            "client_info": client_info,
        }

    async def _check_member_groups(self, request: web.Request) -> web.Response:
        claims = self._authorize(request, None)
        if isinstance(claims, web.Response):
            return claims
        if not {"GroupMember.Read.All", "Directory.Read.All"} & set(claims.get("roles", [])):
            return _graph_error(
                403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation."
            )
        user = self.people.user(request.match_info["user"])
        if user is None:
            return _graph_error(
                404,
                "Request_ResourceNotFound",
                f"Resource '{request.match_info['user']}' does not exist or one of its queried reference-property "
                "objects are not present.",
            )
        body = await self._json_body(request)
        wanted = body.get("groupIds") if isinstance(body, dict) else None
        if not isinstance(wanted, list) or not wanted or len(wanted) > 20:
            return _graph_error(400, "Request_BadRequest", "groupIds must hold between 1 and 20 group ids.")
        member_of = self.people.transitive_groups(user.object_id)
        return web.json_response(
            {
                "@odata.context": f"{self.url}/v1.0/$metadata#Collection(Edm.String)",
                "value": [g for g in wanted if g in member_of],
            }
        )

    async def _group(self, request: web.Request) -> web.Response:
        claims = self._authorize(request, None)
        if isinstance(claims, web.Response):
            return claims
        if not {"GroupMember.Read.All", "Group.Read.All", "Directory.Read.All"} & set(claims.get("roles", [])):
            return _graph_error(
                403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation."
            )
        group_id = request.match_info["group"]
        if group_id not in self.people.groups:
            return _graph_error(
                404,
                "Request_ResourceNotFound",
                f"Resource '{group_id}' does not exist or one of its queried reference-property objects are not "
                "present.",
            )
        return web.json_response(
            {
                "@odata.context": f"{self.url}/v1.0/$metadata#groups/$entity",
                "id": group_id,
                "displayName": self.people.group_names.get(group_id, ""),
                "securityEnabled": True,
            }
        )

    def _authorize(self, request: web.Request, role: str | None) -> web.Response | dict[str, Any]:
        """The token's claims, or Graph's 401/403 answer. ``role=None``: any valid token."""
        auth = request.headers.get("Authorization", "")
        if not auth.startswith("Bearer ") or not auth[7:].strip():
            return _graph_error(401, "InvalidAuthenticationToken", "Access token is empty.")
        try:
            claims: dict[str, Any] = jwt.decode(
                auth[7:].strip(), self._signing_key, algorithms=["HS256"], audience=GRAPH_RESOURCE
            )
        except jwt.ExpiredSignatureError:
            return _graph_error(401, "InvalidAuthenticationToken", "Lifetime validation failed, the token is expired.")
        except jwt.InvalidAudienceError:
            return _graph_error(401, "InvalidAuthenticationToken", "Access token validation failure. Invalid audience.")
        except jwt.PyJWTError:
            return _graph_error(401, "InvalidAuthenticationToken", "IDX14100: JWT is not well formed.")
        if claims.get("epoch") != self.state.token_epoch:
            return _graph_error(401, "InvalidAuthenticationToken", "Lifetime validation failed, the token is expired.")
        if claims.get("tid") != self.tenant_id:
            return _graph_error(401, "InvalidAuthenticationToken", "Access token validation failure. Invalid tenant.")
        if role is not None and role not in claims.get("roles", []):
            return _graph_error(
                403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation."
            )
        return claims

    # -- Graph ----------------------------------------------------------------------------------
    async def _organization(self, request: web.Request) -> web.Response:
        claims = self._authorize(request, "Organization.Read.All")
        if isinstance(claims, web.Response):
            return claims
        domains = [
            {
                "capabilities": "Email, OfficeCommunicationsOnline",
                "isDefault": i == 0,
                "isInitial": i == 0,
                "name": name,
                "type": "Managed",
            }
            for i, name in enumerate(self.state.verified_domains)
        ]
        return web.json_response(
            {
                "@odata.context": f"{self.url}/v1.0/$metadata#organization",
                "value": [
                    {
                        "id": self.tenant_id,
                        "displayName": self.state.organization,
                        "tenantType": "AAD",
                        "verifiedDomains": domains,
                    }
                ],
            }
        )

    async def _audits(self, request: web.Request) -> web.Response:
        claims = self._authorize(request, "AuditLog.Read.All")
        if isinstance(claims, web.Response):
            return claims
        try:
            predicates = _parse_filter(request.query.get("$filter", ""))
            top = int(request.query.get("$top", "100"))
            skip = int(request.query.get("$skiptoken", "0"))
        except ValueError as exc:
            return _graph_error(400, "BadRequest", f"Invalid filter clause: {exc}")
        if not 1 <= top <= 1000:
            return _graph_error(400, "BadRequest", "Invalid page size specified: $top must be between 1 and 1000.")
        matching = [e for e in self.state.audit_events if all(p(e) for p in predicates)]
        matching.sort(key=lambda e: str(e["activityDateTime"]), reverse=True)  # newest first, as Graph
        page = matching[skip : skip + top]
        body: dict[str, Any] = {"@odata.context": f"{self.url}/v1.0/$metadata#auditLogs/directoryAudits", "value": page}
        if skip + top < len(matching):
            query = {k: v for k, v in request.query.items() if k != "$skiptoken"}  # keeps $filter and $top
            query["$skiptoken"] = str(skip + top)
            body["@odata.nextLink"] = f"{self.url}/v1.0/auditLogs/directoryAudits?{urlencode(query)}"
        return web.json_response(body)

    # -- the KerberosDomain store ---------------------------------------------------------------
    def _store_request(self, request: web.Request) -> web.Response | str:
        """The domain's key, or the error answer (any valid token of this tenant may use the store)."""
        claims = self._authorize(request, None)
        if isinstance(claims, web.Response):
            return claims
        if request.match_info["tenant"].lower() != self.tenant_id.lower():
            return _graph_error(404, "Request_ResourceNotFound", "Tenant not found.")
        return request.match_info["domain"].lower()

    def _write_domain(self, key: str, body: dict[str, Any], *, initiated_by: str | None, audit: bool = True) -> bool:
        """Store ``body``; records the audit events the real service would. True when it existed."""
        before = self.state.kerberos_domains.get(key)
        body = {f: body.get(f) for f in STORE_FIELDS}
        self.state.kerberos_domains[key] = body
        if not audit:
            return before is not None
        now = datetime.now(UTC)
        if before is None:
            self.add_audit_event(key, "Add kerberos domain", now, initiated_by_app=initiated_by)
        elif before != body:
            # A key rotation was observed to log two updates (new primary key, old key kept as secondary).
            rotated = before.get("keyVersion") != body.get("keyVersion")
            for _ in range(2 if rotated else 1):
                self.add_audit_event(key, "Update kerberos domain", now, initiated_by_app=initiated_by)
        return before is not None

    @staticmethod
    async def _json_body(request: web.Request) -> object:
        try:
            return await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            return None

    async def _store_get(self, request: web.Request) -> web.Response:
        checked = self._store_request(request)
        if isinstance(checked, web.Response):
            return checked
        found = self.state.kerberos_domains.get(checked)
        if found is None:
            return _graph_error(404, "Request_ResourceNotFound", "KerberosDomain not found.")
        return web.json_response(found)

    async def _store_put(self, request: web.Request) -> web.Response:
        checked = self._store_request(request)
        if isinstance(checked, web.Response):
            return checked
        key = checked
        body = await self._json_body(request)
        problem = _valid_domain_json(body)
        if problem is None and isinstance(body, dict) and str(body["domainDnsName"]).lower() != key:
            problem = "domainDnsName does not match the URL"
        if problem or not isinstance(body, dict):
            return _graph_error(400, "BadRequest", f"Invalid KerberosDomain: {problem}.")
        existed = self._write_domain(key, body, initiated_by=None)
        return web.json_response(self.state.kerberos_domains[key], status=200 if existed else 201)

    async def _store_patch(self, request: web.Request) -> web.Response:
        checked = self._store_request(request)
        if isinstance(checked, web.Response):
            return checked
        key = checked
        current = self.state.kerberos_domains.get(key)
        if current is None:
            return _graph_error(404, "Request_ResourceNotFound", "KerberosDomain not found.")
        changes = await self._json_body(request)
        if not isinstance(changes, dict) or set(changes) - set(STORE_FIELDS) or "domainDnsName" in changes:
            return _graph_error(400, "BadRequest", "Invalid KerberosDomain update: unknown or read-only properties.")
        merged = {**current, **changes}
        problem = _valid_domain_json(merged)
        if problem:
            return _graph_error(400, "BadRequest", f"Invalid KerberosDomain: {problem}.")
        self._write_domain(key, merged, initiated_by=None)
        return web.json_response(self.state.kerberos_domains[key])

    async def _store_delete(self, request: web.Request) -> web.Response:
        checked = self._store_request(request)
        if isinstance(checked, web.Response):
            return checked
        key = checked
        if self.state.kerberos_domains.pop(key, None) is None:
            return _graph_error(404, "Request_ResourceNotFound", "KerberosDomain not found.")
        self.add_audit_event(key, "Delete kerberos domain", datetime.now(UTC), initiated_by_app=None)
        return web.Response(status=204)

    # -- admin, for out-of-process demos ----------------------------------------------------------
    async def _admin_faults(self, request: web.Request) -> web.Response:
        body = await self._json_body(request)
        if not isinstance(body, dict):
            return web.json_response({"error": "expected a JSON object"}, status=400)
        try:
            status = body.get("status")
            retry_after = body.get("retry_after")
            self.fail_next(
                str(body.get("route")),
                int(status) if status is not None else None,
                count=int(body.get("count", 1)),
                retry_after=float(retry_after) if retry_after is not None else None,
                delay=float(body.get("delay", 0)),
            )
        except (TypeError, ValueError) as exc:
            return web.json_response({"error": str(exc)}, status=400)
        return web.json_response({"ok": True})

    async def _admin_clear_faults(self, request: web.Request) -> web.Response:
        self.clear_faults()
        return web.json_response({"ok": True})

    async def _admin_expire(self, request: web.Request) -> web.Response:
        self.expire_tokens()
        return web.json_response({"ok": True})

    async def _admin_counts(self, request: web.Request) -> web.Response:
        return web.json_response({**self.request_counts(), "tokens_issued": self.state.tokens_issued})

    async def _admin_device_codes(self, request: web.Request) -> web.Response:
        return web.json_response({"pending": self.people.pending_user_codes()})

    async def _admin_device_sign_in(self, request: web.Request) -> web.Response:
        """{"user_code", "upn", "mfa": true} signs in; {"user_code", "decline": "access_denied"} declines."""
        body = await self._json_body(request)
        if not isinstance(body, dict) or not body.get("user_code"):
            return web.json_response({"error": "expected a JSON object with user_code"}, status=400)
        try:
            if body.get("decline"):
                self.people.decline(str(body["user_code"]), str(body["decline"]))
            else:
                self.people.sign_in(str(body["user_code"]), str(body.get("upn") or ""), mfa=bool(body.get("mfa", True)))
        except KeyError as exc:
            return web.json_response({"error": str(exc.args[0])}, status=404)
        return web.json_response({"ok": True})

    async def _admin_reset(self, request: web.Request) -> web.Response:
        body = await self._json_body(request)
        if isinstance(body, dict) and body.get("data"):
            self.reset()
        else:  # keep the demo's data; start counting afresh
            self.clear_faults()
            self.state.counts.clear()
        return web.json_response({"ok": True})


def _field_equals(name: str, value: str) -> Predicate:
    return lambda event: event.get(name) == value


def _target_named(name: str) -> Predicate:
    return lambda event: any((t.get("displayName") or "").lower() == name for t in event["targetResources"])


def _time_compare(op: str, bound: datetime) -> Predicate:
    def compare(event: dict[str, Any]) -> bool:
        at = datetime.fromisoformat(str(event["activityDateTime"]).replace("Z", "+00:00"))
        return {"ge": at >= bound, "le": at <= bound, "gt": at > bound, "lt": at < bound}[op]

    return compare


def _parse_filter(text: str) -> list[Predicate]:
    """The subset of OData $filter the bot uses: eq on category, activityDisplayName,
    loggedByService, result; ge/le/gt/lt on activityDateTime; and
    ``targetResources/any(t: t/displayName eq '...')``; joined by ``and``."""
    predicates: list[Predicate] = []
    if not text.strip():
        return predicates
    for raw in re.split(r"\s+and\s+", text.strip()):
        clause = raw.strip()
        m = re.fullmatch(r"targetResources/any\((\w+):\s*\1/displayName eq '((?:[^']|'')*)'\)", clause)
        if m:
            predicates.append(_target_named(m.group(2).replace("''", "'").lower()))
            continue
        m = re.fullmatch(r"(category|activityDisplayName|loggedByService|result) eq '((?:[^']|'')*)'", clause)
        if m:
            predicates.append(_field_equals(m.group(1), m.group(2).replace("''", "'")))
            continue
        m = re.fullmatch(r"activityDateTime (ge|le|gt|lt) (\S+)", clause)
        if m:
            bound = datetime.fromisoformat(m.group(2).replace("Z", "+00:00"))
            if bound.tzinfo is None:
                raise ValueError(f"{clause} (the time needs a zone, e.g. Z)")
            predicates.append(_time_compare(m.group(1), bound))
            continue
        raise ValueError(clause)
    return predicates


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
