"""The Entra adapter: the tenant and the KerberosDomain audit events, through Microsoft Graph.

Graph has no API for the Kerberos server itself (see docs: only the audit log shows its
changes), so this adapter reads ``/organization`` and ``/auditLogs/directoryAudits``. Needs the
application permissions Organization.Read.All and AuditLog.Read.All, with admin consent.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from bot.adapters.entra.app import EntraApp, EntraHttp
from bot.domain.errors import EntraError, EntraNotFound
from bot.domain.model import AuditEvent, TenantInfo

_TENANT_CACHE_SECONDS = 300.0  # the tenant's name and domains change rarely; status asks often
_PAGE_SIZE = 50  # Graph's $top; the caller's limit is usually smaller


log = logging.getLogger(__name__)


def graph_scope_resource(graph_url: str) -> str:
    """The resource id for tokens: Graph's public host, except in sovereign clouds (their own host)."""
    host = graph_url.split("://", 1)[-1].split("/", 1)[0]
    return graph_url if host.startswith("graph.") else "https://graph.microsoft.com"


def _parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


def _initiator(event: dict[str, Any]) -> str | None:
    initiated = event.get("initiatedBy") or {}
    user = initiated.get("user") or {}
    app = initiated.get("app") or {}
    return user.get("userPrincipalName") or user.get("displayName") or app.get("displayName")


def _event(item: dict[str, Any]) -> AuditEvent:
    return AuditEvent(
        id=str(item.get("id")),
        activity=str(item.get("activityDisplayName")),
        at=_parse_time(str(item.get("activityDateTime"))),
        result=str(item.get("result")),
        initiated_by=_initiator(item),
        targets=tuple(str(t.get("displayName")) for t in item.get("targetResources") or []),
    )


class GraphEntraDirectory:
    """Implements ``bot.domain.ports.EntraDirectory``.

    ``app`` carries the explicit sign-in values (tenant, client id, secret or certificate,
    authority host, CA file, timeout); ``graph_url`` is where Graph is reached (sovereign clouds,
    the stand-in). Call ``close()`` when done.
    """

    def __init__(self, app: EntraApp, *, graph_url: str = "https://graph.microsoft.com") -> None:
        self._graph = graph_url.rstrip("/")
        # The resource is Graph whatever the URL it is reached at (sovereign clouds: set graph_url).
        self._http = EntraHttp(app, scope=f"{graph_scope_resource(self._graph)}/.default", service="Microsoft Graph")
        self.tokens = self._http.tokens
        self._tenant: tuple[float, TenantInfo] | None = None

    @property
    def graph_requests(self) -> int:
        """HTTP requests sent to Graph (retries included)."""
        return self._http.requests

    @property
    def token_requests(self) -> int:
        """Tokens msal fetched from the identity platform (cache hits not counted)."""
        return self.tokens.token_requests

    async def _get_json(self, url: str, params: dict[str, str] | None, permission: str) -> dict[str, Any]:
        response = await self._http.request("GET", url, params=params, permission=permission)
        if response.status_code == 404:
            raise EntraNotFound(f"Microsoft Graph has no resource at {url.removeprefix(self._graph).split('?')[0]}.")
        try:
            body: dict[str, Any] = response.json()
        except ValueError as exc:
            raise EntraError("Microsoft Graph answered with something that is not JSON.") from exc
        return body

    async def tenant(self) -> TenantInfo:
        if self._tenant and time.monotonic() - self._tenant[0] < _TENANT_CACHE_SECONDS:
            return self._tenant[1]
        body = await self._get_json(f"{self._graph}/v1.0/organization", None, "Organization.Read.All")
        org = (body.get("value") or [{}])[0]
        info = TenantInfo(
            id=str(org.get("id", "")),
            display_name=str(org.get("displayName", "")),
            verified_domains=tuple(d["name"] for d in org.get("verifiedDomains") or []),
        )
        self._tenant = (time.monotonic(), info)
        return info

    async def kerberos_domain_events(
        self, domain_dns_name: str, *, since: datetime | None = None, limit: int = 20
    ) -> list[AuditEvent]:
        if limit <= 0:
            return []
        name = domain_dns_name.replace("'", "''")  # an OData string literal
        clauses = ["category eq 'KerberosDomain'", f"targetResources/any(t: t/displayName eq '{name}')"]
        if since is not None:
            clauses.append(f"activityDateTime ge {since.astimezone(UTC).strftime('%Y-%m-%dT%H:%M:%SZ')}")
        url: str | None = f"{self._graph}/v1.0/auditLogs/directoryAudits"
        params: dict[str, str] | None = {"$filter": " and ".join(clauses), "$top": str(min(limit, _PAGE_SIZE))}
        events: dict[str, AuditEvent] = {}  # by id: a page boundary moving under us must not duplicate
        while url and len(events) < limit:
            body = await self._get_json(url, params, "AuditLog.Read.All")
            for item in body.get("value") or []:
                event = _event(item)
                events.setdefault(event.id, event)
            url, params = self._next_link(body.get("@odata.nextLink")), None  # the link carries the whole query
        return sorted(events.values(), key=lambda e: e.at, reverse=True)[:limit]

    def _next_link(self, link: object) -> str | None:
        """The next page, only on Graph itself: the bot's token never goes to a host an answer names."""
        if not isinstance(link, str):
            return None
        if not link.startswith(self._graph + "/"):
            log.warning("ignored an @odata.nextLink outside %s", self._graph)
            return None
        return link

    async def is_transitive_member(self, user_object_id: str, group_id: str) -> bool:
        """``EntraGroupMembership``: checkMemberGroups answers with the groups among those asked for
        that the user is in, directly or through nested groups."""
        url = f"{self._graph}/v1.0/users/{quote(user_object_id, safe='')}/checkMemberGroups"
        response = await self._http.request(
            "POST", url, json={"groupIds": [group_id]}, permission="GroupMember.Read.All"
        )
        if response.status_code == 404:
            return False  # no such user in the bot's tenant
        try:
            found = response.json().get("value") or []
        except (ValueError, AttributeError) as exc:
            raise EntraError("Microsoft Graph answered with something that is not JSON.") from exc
        return group_id.lower() in {str(g).lower() for g in found}

    async def object_id_of(self, user_principal_name: str) -> str | None:
        """``EntraGroupMembership``: the user's object id (``GET /users/{upn}``); None when there is none."""
        url = f"{self._graph}/v1.0/users/{quote(user_principal_name, safe='@')}"
        response = await self._http.request("GET", url, params={"$select": "id"}, permission="User.Read.All")
        if response.status_code == 404:
            return None
        try:
            found = response.json().get("id")
        except (ValueError, AttributeError) as exc:
            raise EntraError("Microsoft Graph answered with something that is not JSON.") from exc
        return str(found).lower() if found else None

    async def group_display_name(self, group_id: str) -> str:
        """The group's name (``kerberos-bot check``: the approver group exists and the bot may read it)."""
        url = f"{self._graph}/v1.0/groups/{quote(group_id, safe='')}"
        body = await self._get_json(url, {"$select": "id,displayName"}, "GroupMember.Read.All")
        return str(body.get("displayName") or group_id)

    async def close(self) -> None:
        await self._http.close()
