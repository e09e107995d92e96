"""Microsoft Graph, as the bot reads it: the organization, directory audits (with OData filters and
paging), group names and checkMemberGroups; errors in Graph's shapes."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from kerberos_sandbox.entra.base import (
    StandInBase,
    graph_error,
)
from kerberos_sandbox.entra.odata import parse_filter
from kerberos_sandbox.entra_people import StandInUser


class GraphApi(StandInBase):
    def _add_graph_routes(self, app: web.Application) -> None:
        app.router.add_post("/v1.0/users/{user}/checkMemberGroups", self._check_member_groups)
        app.router.add_get("/v1.0/groups/{group}", self._group)
        app.router.add_get("/v1.0/users/{user}", self._user)
        app.router.add_get("/v1.0/organization", self._organization)
        app.router.add_get("/v1.0/auditLogs/directoryAudits", self._audits)

    def _user_in_path(self, request: web.Request, permission: str) -> StandInUser | web.Response:
        """The user the path names, as Graph finds it for an app holding ``permission`` (or Directory.Read.All);
        Graph's 403 or 404 otherwise."""
        claims = self._authorize(request, None)
        if isinstance(claims, web.Response):
            return claims
        if not {permission, "Directory.Read.All"} & set(claims.get("roles", [])):
            return graph_error(403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.")
        user = self.people.user(request.match_info["user"])
        if user is None:
            return graph_error(
                404,
                "Request_ResourceNotFound",
                f"Resource '{request.match_info['user']}' does not exist or one of its queried reference-property "
                "objects are not present.",
            )
        return user

    async def _user(self, request: web.Request) -> web.Response:
        user = self._user_in_path(request, "User.Read.All")
        if isinstance(user, web.Response):
            return user
        return web.json_response(
            {"@odata.context": f"{self.url}/v1.0/$metadata#users(id)/$entity", "id": user.object_id}
        )

    async def _check_member_groups(self, request: web.Request) -> web.Response:
        user = self._user_in_path(request, "GroupMember.Read.All")
        if isinstance(user, web.Response):
            return user
        body = await self._json_body(request)
        wanted = body.get("groupIds") if isinstance(body, dict) else None
        if not isinstance(wanted, list) or not wanted or len(wanted) > 20:
            return graph_error(400, "Request_BadRequest", "groupIds must hold between 1 and 20 group ids.")
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
            return graph_error(403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.")
        group_id = request.match_info["group"]
        if group_id not in self.people.groups:
            return graph_error(
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
            predicates = parse_filter(request.query.get("$filter", ""))
            top = int(request.query.get("$top", "100"))
            skip = int(request.query.get("$skiptoken", "0"))
        except ValueError as exc:
            return graph_error(400, "BadRequest", f"Invalid filter clause: {exc}")
        if not 1 <= top <= 1000:
            return graph_error(400, "BadRequest", "Invalid page size specified: $top must be between 1 and 1000.")
        matching = [e for e in self.state.audit_events if all(p(e) for p in predicates)]
        matching.sort(key=lambda e: str(e["activityDateTime"]), reverse=True)  # newest first, as Graph
        page = matching[skip : skip + top]
        body: dict[str, Any] = {"@odata.context": f"{self.url}/v1.0/$metadata#auditLogs/directoryAudits", "value": page}
        if skip + top < len(matching):
            query = {k: v for k, v in request.query.items() if k != "$skiptoken"}  # keeps $filter and $top
            query["$skiptoken"] = str(skip + top)
            base = self.state.next_link_base or self.url
            body["@odata.nextLink"] = f"{base}/v1.0/auditLogs/directoryAudits?{urlencode(query)}"
        return web.json_response(body)
