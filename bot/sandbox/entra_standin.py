"""A local HTTPS stand-in for the Microsoft identity platform, Microsoft Graph, and Entra's
KerberosDomain store (which has no public API; the Kerberos module emulator writes it).

msal talks to it unpatched: OpenID discovery, the v2.0 token endpoint with a client secret or a
certificate assertion. Graph answers in Graph's shapes (``value``, ``@odata.nextLink``, error
objects) and fails like the real service when told to: 401, 403, 429 with Retry-After, 5xx,
delays, expired tokens. Used by the tests, the demo and the benchmarks.
"""

from __future__ import annotations

import asyncio
import base64
import re
import secrets
import ssl
import tempfile
import time
import uuid
from collections import Counter
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

from bot.web import start_site

GRAPH_ROLES = ("AuditLog.Read.All", "Organization.Read.All")
TOKEN_LIFETIME = 3599


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
    roles: tuple[str, ...] = GRAPH_ROLES
    certificates: dict[str, str] = field(default_factory=dict)  # x5t -> public PEM
    audit_events: list[dict[str, Any]] = field(default_factory=list)
    kerberos_domains: dict[str, dict[str, Any]] = field(default_factory=dict)
    faults: dict[str, list[Fault]] = field(default_factory=dict)
    counts: Counter[str] = field(default_factory=Counter)
    token_epoch: int = 0  # tokens minted in an earlier epoch count as expired


def _graph_error(status: int, code: str, message: str) -> web.Response:
    return web.json_response(
        {
            "error": {
                "code": code,
                "message": message,
                "innerError": {"date": datetime.now(UTC).isoformat(), "request-id": str(uuid.uuid4())},
            }
        },
        status=status,
    )


def _aadsts(status: int, error: str, code: int, text: str) -> web.Response:
    return web.json_response(
        {
            "error": error,
            "error_description": f"AADSTS{code}: {text} Trace ID: {uuid.uuid4()}",
            "error_codes": [code],
            "timestamp": datetime.now(UTC).isoformat(),
        },
        status=status,
    )


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class EntraStandIn:
    """Run with ``async with EntraStandIn() as entra:``; ``entra.url`` is both authority and Graph."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, tenant_id: str | None = None) -> None:
        self._host, self._port = host, port
        self.state = StandInState(
            tenant_id=tenant_id or str(uuid.uuid4()),
            client_id=str(uuid.uuid4()),
            client_secret=secrets.token_urlsafe(30),
        )
        self._signing_key = secrets.token_bytes(32)
        self._dir = tempfile.TemporaryDirectory(prefix="entra-standin-")
        self._ca = trustme.CA()
        self.ca_file = Path(self._dir.name) / "ca.pem"
        self._ca.cert_pem.write_to_path(str(self.ca_file))
        self._runner: web.AppRunner | None = None
        self.url = ""

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

    def register_certificate(self, public_pem: bytes) -> str:
        """Register an app certificate; returns its SHA-1 thumbprint (hex), as Entra shows it."""
        sha1 = x509.load_pem_x509_certificate(public_pem).fingerprint(hashes.SHA1())
        self.state.certificates[_x5t(sha1)] = public_pem.decode()
        return sha1.hex().upper()

    # -- test controls --------------------------------------------------------------------------
    def fail_next(
        self,
        route: str,
        status: int | None = None,
        *,
        count: int = 1,
        retry_after: float | None = None,
        delay: float = 0.0,
    ) -> None:
        """The next ``count`` requests on ``route`` ("token", "graph", "store") fail or stall."""
        self.state.faults.setdefault(route, []).extend(Fault(status, retry_after, delay) for _ in range(count))

    def clear_faults(self) -> None:
        self.state.faults.clear()

    def expire_tokens(self) -> None:
        """Every token issued so far is now expired (Graph answers 401 'token is expired')."""
        self.state.token_epoch += 1

    def request_counts(self) -> dict[str, int]:
        return dict(self.state.counts)

    def add_audit_event(
        self, domain: str, activity: str, at: datetime, *, initiated_by_user: str | None = None, result: str = "success"
    ) -> dict[str, Any]:
        event = {
            "id": f"Directory_{uuid.uuid4()}",
            "category": "KerberosDomain",
            "correlationId": str(uuid.uuid4()),
            "result": result,
            "resultReason": "",
            "activityDisplayName": activity,
            "activityDateTime": _iso(at),
            "loggedByService": "Core Directory",
            "operationType": activity.split(" ", 1)[0],
            "initiatedBy": {
                "user": {
                    "id": str(uuid.uuid4()),
                    "displayName": None,
                    "userPrincipalName": initiated_by_user,
                    "ipAddress": None,
                }
            }
            if initiated_by_user
            else {
                "app": {
                    "appId": self.client_id,
                    "displayName": "kerberos-bot emulator",
                    "servicePrincipalId": str(uuid.uuid4()),
                    "servicePrincipalName": None,
                }
            },
            "targetResources": [
                {
                    "id": str(uuid.uuid4()),
                    "displayName": domain,
                    "type": "Other",
                    "userPrincipalName": None,
                    "modifiedProperties": [],
                }
            ],
            "additionalDetails": [],
        }
        self.state.audit_events.append(event)
        return event

    def reset(self) -> None:
        self.state.audit_events.clear()
        self.state.kerberos_domains.clear()
        self.state.faults.clear()
        self.state.counts.clear()
        self.state.roles = GRAPH_ROLES
        self.state.token_epoch = 0

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
        app.router.add_get("/v1.0/organization", self._organization)
        app.router.add_get("/v1.0/auditLogs/directoryAudits", self._audits)
        store = "/_emulator/tenants/{tenant}/kerberosDomains/{domain}"
        app.router.add_get(store, self._store_get)
        app.router.add_put(store, self._store_put)
        app.router.add_delete(store, self._store_delete)
        app.router.add_post("/_standin/faults", self._admin_faults)
        app.router.add_post("/_standin/expire-tokens", self._admin_expire)
        cert = self._ca.issue_cert("127.0.0.1", "localhost", self._host)
        ssl_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        cert.configure_cert(ssl_context)
        self._runner, port = await start_site(app, self._host, self._port, ssl_context=ssl_context)
        self.url = f"https://{self._host}:{port}"

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
    async def _faults_middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        route = self._route_of(request.path)
        self.state.counts[route] += 1
        queue = self.state.faults.get(route)
        if queue:
            fault = queue.pop(0)
            if fault.delay:
                await asyncio.sleep(fault.delay)
            if fault.status is not None:
                headers = {"Retry-After": f"{fault.retry_after:g}"} if fault.retry_after is not None else {}
                if route == "token":
                    resp = _aadsts(fault.status, "temporarily_unavailable", 50196, "The server is busy.")
                else:
                    code = {
                        401: "InvalidAuthenticationToken",
                        403: "Authorization_RequestDenied",
                        429: "TooManyRequests",
                    }.get(fault.status, "ServiceUnavailable")
                    resp = _graph_error(fault.status, code, f"Injected fault {fault.status}.")
                resp.headers.update(headers)
                return resp
        response: web.StreamResponse = await handler(request)
        return response

    # -- identity platform ----------------------------------------------------------------------
    def _known_tenant(self, request: web.Request) -> bool:
        return request.match_info["tenant"] in (self.tenant_id, "organizations")

    async def _discovery(self, request: web.Request) -> web.Response:
        tenant = request.match_info["tenant"]
        if not self._known_tenant(request):
            return _aadsts(400, "invalid_tenant", 90002, f"Tenant '{tenant}' not found.")
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
                "tenant_region_scope": "EU",
            }
        )

    def _check_assertion(self, assertion: str, token_endpoint: str) -> str | None:
        """None when the certificate assertion is valid, else the reason."""
        try:
            header = jwt.get_unverified_header(assertion)
            pem = self.state.certificates.get(str(header.get("x5t", "")).rstrip("="))
            if pem is None:
                return (
                    "AADSTS700027: The certificate with identifier used to sign the client assertion is not registered."
                )
            public_key = x509.load_pem_x509_certificate(pem.encode()).public_key()
            claims = jwt.decode(
                assertion,
                public_key,  # type: ignore[arg-type]
                algorithms=["RS256", "PS256"],
                audience=token_endpoint,
            )
        except jwt.PyJWTError as exc:
            return f"AADSTS700027: Client assertion failed signature validation ({type(exc).__name__})."
        if claims.get("iss") != self.client_id or claims.get("sub") != self.client_id:
            return "AADSTS700023: Client assertion audience/issuer mismatch."
        return None

    async def _token(self, request: web.Request) -> web.Response:
        if not self._known_tenant(request):
            return _aadsts(400, "invalid_request", 90002, "Tenant not found.")
        form = await request.post()
        if form.get("grant_type") != "client_credentials":
            return _aadsts(400, "unsupported_grant_type", 70003, "The app requested an unsupported grant type.")
        if form.get("client_id") != self.client_id:
            return _aadsts(
                400,
                "unauthorized_client",
                700016,
                f"Application with identifier '{form.get('client_id')!s}' was not found in the directory.",
            )
        assertion = form.get("client_assertion")
        if isinstance(assertion, str):
            endpoint = f"{self.url}/{request.match_info['tenant']}/oauth2/v2.0/token"
            problem = self._check_assertion(assertion, endpoint)
            if problem:
                code = int(problem[6:12])
                return _aadsts(401, "invalid_client", code, problem.split(": ", 1)[1])
        elif form.get("client_secret") != self.client_secret:
            return _aadsts(
                401,
                "invalid_client",
                7000215,
                "Invalid client secret provided. Ensure the secret being "
                "sent in the request is the client secret value, not the client secret ID.",
            )
        now = int(time.time())
        access_token = jwt.encode(
            {
                "aud": "https://graph.microsoft.com",
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

    def _authorize(self, request: web.Request, role: str) -> web.Response | dict[str, Any]:
        auth = request.headers.get("Authorization", "")
        if not auth.startswith("Bearer "):
            return _graph_error(401, "InvalidAuthenticationToken", "Access token is empty.")
        try:
            claims: dict[str, Any] = jwt.decode(
                auth[7:], self._signing_key, algorithms=["HS256"], audience="https://graph.microsoft.com"
            )
        except jwt.ExpiredSignatureError:
            return _graph_error(401, "InvalidAuthenticationToken", "Lifetime validation failed, the token is expired.")
        except jwt.PyJWTError:
            return _graph_error(401, "InvalidAuthenticationToken", "Access token validation failure. Invalid audience.")
        if claims.get("epoch") != self.state.token_epoch:
            return _graph_error(401, "InvalidAuthenticationToken", "Lifetime validation failed, the token is expired.")
        if role not in claims.get("roles", []):
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
                "value": [{"id": self.tenant_id, "displayName": self.state.organization, "verifiedDomains": domains}],
            }
        )

    async def _audits(self, request: web.Request) -> web.Response:
        claims = self._authorize(request, "AuditLog.Read.All")
        if isinstance(claims, web.Response):
            return claims
        try:
            predicates = _parse_filter(request.query.get("$filter", ""))
            top = min(int(request.query.get("$top", "100")), 1000)
            skip = int(request.query.get("$skiptoken", "0"))
        except ValueError as exc:
            return _graph_error(400, "BadRequest", f"Invalid filter clause: {exc}")
        matching = [e for e in self.state.audit_events if all(p(e) for p in predicates)]
        matching.sort(key=lambda e: e["activityDateTime"], reverse=True)
        page = matching[skip : skip + top]
        body: dict[str, Any] = {"@odata.context": f"{self.url}/v1.0/$metadata#auditLogs/directoryAudits", "value": page}
        if skip + top < len(matching):
            query = {k: v for k, v in request.query.items() if k != "$skiptoken"}
            query["$skiptoken"] = str(skip + top)
            body["@odata.nextLink"] = f"{self.url}/v1.0/auditLogs/directoryAudits?{urlencode(query)}"
        return web.json_response(body)

    # -- the KerberosDomain store ---------------------------------------------------------------
    def _store_key(self, request: web.Request) -> str:
        return request.match_info["domain"].lower()

    async def _store_get(self, request: web.Request) -> web.Response:
        claims = self._authorize(request, "AuditLog.Read.All")
        if isinstance(claims, web.Response):
            return claims
        found = self.state.kerberos_domains.get(self._store_key(request))
        if found is None:
            return _graph_error(404, "Request_ResourceNotFound", "KerberosDomain not found.")
        return web.json_response(found)

    async def _store_put(self, request: web.Request) -> web.Response:
        claims = self._authorize(request, "AuditLog.Read.All")
        if isinstance(claims, web.Response):
            return claims
        body = await request.json()
        key = self._store_key(request)
        existed = key in self.state.kerberos_domains
        self.state.kerberos_domains[key] = body
        activity = "Update kerberos domain" if existed else "Add kerberos domain"
        self.add_audit_event(key, activity, datetime.now(UTC))
        return web.json_response(body, status=200 if existed else 201)

    async def _store_delete(self, request: web.Request) -> web.Response:
        claims = self._authorize(request, "AuditLog.Read.All")
        if isinstance(claims, web.Response):
            return claims
        key = self._store_key(request)
        if self.state.kerberos_domains.pop(key, None) is None:
            return _graph_error(404, "Request_ResourceNotFound", "KerberosDomain not found.")
        self.add_audit_event(key, "Delete kerberos domain", datetime.now(UTC))
        return web.Response(status=204)

    # -- admin, for out-of-process demos ----------------------------------------------------------
    async def _admin_faults(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.fail_next(
            body["route"],
            body.get("status"),
            count=int(body.get("count", 1)),
            retry_after=body.get("retry_after"),
            delay=float(body.get("delay", 0)),
        )
        return web.json_response({"ok": True})

    async def _admin_expire(self, request: web.Request) -> web.Response:
        self.expire_tokens()
        return web.json_response({"ok": True})


def _x5t(sha1: bytes) -> str:
    return base64.urlsafe_b64encode(sha1).decode().rstrip("=")


def _field_equals(name: str, value: str) -> Any:
    return lambda event: event.get(name) == value


def _parse_filter(text: str) -> list[Any]:
    """The subset of OData $filter the bot uses: eq/ge/le on category, activityDisplayName,
    activityDateTime, and ``targetResources/any(t: t/displayName eq '...')``, joined by ``and``."""
    predicates: list[Any] = []
    if not text.strip():
        return predicates
    for clause in re.split(r"\s+and\s+", text.strip()):
        clause = clause.strip()
        m = re.fullmatch(r"targetResources/any\((\w+):\s*\1/displayName eq '([^']*)'\)", clause)
        if m:
            name = m.group(2).lower()
            predicates.append(
                lambda e, n=name: any((t.get("displayName") or "").lower() == n for t in e["targetResources"])
            )
            continue
        m = re.fullmatch(r"(category|activityDisplayName|loggedByService) eq '([^']*)'", clause)
        if m:
            predicates.append(_field_equals(m.group(1), m.group(2)))
            continue
        m = re.fullmatch(r"activityDateTime (ge|le|gt|lt) (\S+)", clause)
        if m:
            op, bound = m.group(1), datetime.fromisoformat(m.group(2).replace("Z", "+00:00"))

            def compare(e: dict[str, Any], op: str = op, bound: datetime = bound) -> bool:
                at = datetime.fromisoformat(e["activityDateTime"].replace("Z", "+00:00"))
                return {"ge": at >= bound, "le": at <= bound, "gt": at > bound, "lt": at < bound}[op]

            predicates.append(compare)
            continue
        raise ValueError(clause)
    return predicates
