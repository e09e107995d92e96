"""What the stand-in's APIs share: its state, the error shapes of Entra and Graph, token checks."""

from __future__ import annotations

import base64
import json
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import jwt
from aiohttp import web

from kerberos_sandbox.entra_people import EntraPeople

GRAPH_RESOURCE = "https://graph.microsoft.com"
GRAPH_ROLES = ("AuditLog.Read.All", "Organization.Read.All", "GroupMember.Read.All", "User.Read.All")
DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
TOKEN_LIFETIME = 3599  # what the identity platform grants an app-only token
ROUTES = ("discovery", "token", "graph", "store")
ADMIN_HEADER = "X-Stand-In-Key"
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
    next_link_base: str | None = None  # set: audit pages link elsewhere (a tampered answer); None: Graph's own
    app_object_id: str = field(default_factory=lambda: str(uuid.uuid4()))  # the bot's service principal
    app_token_lifetime: int = TOKEN_LIFETIME  # seconds an app-only (or managed identity) token lasts
    # the managed identity of the host (App Service's endpoint: /msi/token with X-IDENTITY-HEADER)
    managed_identity_object_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    managed_identity_header: str = field(default_factory=lambda: uuid.uuid4().hex)
    # told of each app or managed-identity token as it is issued: (audience, object id, token); a resource
    # that validates Entra tokens (Azure Managed Redis) is played by the tests through it
    on_app_token: Callable[[str, str, str], None] | None = None


def graph_error(status: int, code: str, message: str) -> web.Response:
    response = web.json_response(
        {
            "error": {
                "code": code,
                "message": message,
                "innerError": {"date": iso(datetime.now(UTC)), "request-id": str(uuid.uuid4())},
            }
        },
        status=status,
    )
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="", error="invalid_token"'
    return response


def aadsts(status: int, error: str, code: int | None, text: str) -> web.Response:
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


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def x5t(digest: bytes) -> str:
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


class StandInBase:
    """The state and the few facts every API of the stand-in reads (``EntraStandIn`` sets them)."""

    state: StandInState
    url: str
    admin_key: str
    _signing_key: bytes
    _initial: tuple[str, tuple[str, ...]]

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

    def _known_tenant(self, tenant: str) -> bool:
        # The tenant may be named by id or by a verified domain, as in the real authority URL.
        return tenant.lower() in (self.tenant_id.lower(), *(d.lower() for d in self.state.verified_domains))

    def _authorize(self, request: web.Request, role: str | None) -> web.Response | dict[str, Any]:
        """The token's claims, or Graph's 401/403 answer. ``role=None``: any valid token."""
        auth = request.headers.get("Authorization", "")
        if not auth.startswith("Bearer ") or not auth[7:].strip():
            return graph_error(401, "InvalidAuthenticationToken", "Access token is empty.")
        try:
            claims: dict[str, Any] = jwt.decode(
                auth[7:].strip(), self._signing_key, algorithms=["HS256"], audience=GRAPH_RESOURCE
            )
        except jwt.ExpiredSignatureError:
            return graph_error(401, "InvalidAuthenticationToken", "Lifetime validation failed, the token is expired.")
        except jwt.InvalidAudienceError:
            return graph_error(401, "InvalidAuthenticationToken", "Access token validation failure. Invalid audience.")
        except jwt.PyJWTError:
            return graph_error(401, "InvalidAuthenticationToken", "IDX14100: JWT is not well formed.")
        if claims.get("epoch") != self.state.token_epoch:
            return graph_error(401, "InvalidAuthenticationToken", "Lifetime validation failed, the token is expired.")
        if claims.get("tid") != self.tenant_id:
            return graph_error(401, "InvalidAuthenticationToken", "Access token validation failure. Invalid tenant.")
        if role is not None and role not in claims.get("roles", []):
            return graph_error(403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.")
        return claims

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
            "activityDateTime": iso(at),
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

    @staticmethod
    async def _json_body(request: web.Request) -> object:
        try:
            return await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            return None
