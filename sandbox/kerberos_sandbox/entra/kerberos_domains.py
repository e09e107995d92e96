"""Entra's KerberosDomain store (no public API: the module writes it, the emulator plays the module).

Its JSON is written here, from the fields' names as the real service shows them, not with the
adapter's codec (``cloud_store``): a codec bug must show in the adapter's tests, not cancel out.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from bot.domain.model import CloudKerberosDomain
from kerberos_sandbox.entra.base import (
    StandInBase,
    graph_error,
)

STORE_FIELDS = ("id", "displayName", "domainDnsName", "keyVersion", "keyUpdatedOn", "trustDisplay", "topLevelNames")


def kerberos_domain_json(domain: CloudKerberosDomain) -> dict[str, Any]:
    """A KerberosDomain as the store keeps it (keyUpdatedOn in ISO 8601 with a Z, as Graph writes times)."""
    return {
        "id": domain.id,
        "displayName": domain.display_name,
        "domainDnsName": domain.domain_dns_name,
        "keyVersion": domain.key_version,
        "keyUpdatedOn": domain.key_updated_on.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "trustDisplay": domain.trust_display,
        "topLevelNames": list(domain.top_level_names),
    }


def _signed_in_as(request: web.Request) -> str | None:
    """The person the emulated module ran as (``-UserPrincipalName``), whom the audit log names; absent: the
    bot's app (its unattended cloud credential)."""
    return request.query.get("signedInAs") or None


def valid_domain_json(body: object) -> str | None:
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


class KerberosDomainStore(StandInBase):
    def _add_store_routes(self, app: web.Application) -> None:
        # seeding, behind the admin key (the store itself takes any token of the tenant)
        app.router.add_put("/_standin/kerberos-domains/{domain}", self._admin_seed_domain)
        app.router.add_delete("/_standin/kerberos-domains/{domain}", self._admin_forget_domain)
        store = "/_emulator/tenants/{tenant}/kerberosDomains/{domain}"
        app.router.add_get(store, self._store_get)
        app.router.add_put(store, self._store_put)
        app.router.add_patch(store, self._store_patch)
        app.router.add_delete(store, self._store_delete)

    def put_kerberos_domain(self, domain: CloudKerberosDomain | dict[str, Any], *, audit: bool = False) -> None:
        """Create or replace a KerberosDomain as if the module had written it (no audit by default)."""
        body = kerberos_domain_json(domain) if isinstance(domain, CloudKerberosDomain) else dict(domain)
        problem = valid_domain_json(body)
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

    def _store_request(self, request: web.Request) -> web.Response | str:
        """The domain's key, or the error answer (any valid token of this tenant may use the store)."""
        claims = self._authorize(request, None)
        if isinstance(claims, web.Response):
            return claims
        if request.match_info["tenant"].lower() != self.tenant_id.lower():
            return graph_error(404, "Request_ResourceNotFound", "Tenant not found.")
        return request.match_info["domain"].lower()

    def _write_domain(
        self,
        key: str,
        body: dict[str, Any],
        *,
        initiated_by: str | None,
        audit: bool = True,
        signed_in_as: str | None = None,
    ) -> bool:
        """Store ``body``; records the audit events the real service would. True when it existed."""
        before = self.state.kerberos_domains.get(key)
        body = {f: body.get(f) for f in STORE_FIELDS}
        self.state.kerberos_domains[key] = body
        if not audit:
            return before is not None
        now = datetime.now(UTC)
        if before is None:
            self.add_audit_event(
                key, "Add kerberos domain", now, initiated_by_user=signed_in_as, initiated_by_app=initiated_by
            )
        elif before != body:
            # A key rotation was observed to log two updates (new primary key, old key kept as secondary).
            rotated = before.get("keyVersion") != body.get("keyVersion")
            for _ in range(2 if rotated else 1):
                self.add_audit_event(
                    key, "Update kerberos domain", now, initiated_by_user=signed_in_as, initiated_by_app=initiated_by
                )
        return before is not None

    async def _store_get(self, request: web.Request) -> web.Response:
        checked = self._store_request(request)
        if isinstance(checked, web.Response):
            return checked
        found = self.state.kerberos_domains.get(checked)
        if found is None:
            return graph_error(404, "Request_ResourceNotFound", "KerberosDomain not found.")
        return web.json_response(found)

    async def _store_put(self, request: web.Request) -> web.Response:
        checked = self._store_request(request)
        if isinstance(checked, web.Response):
            return checked
        key = checked
        body = await self._json_body(request)
        problem = valid_domain_json(body)
        if problem is None and isinstance(body, dict) and str(body["domainDnsName"]).lower() != key:
            problem = "domainDnsName does not match the URL"
        if problem or not isinstance(body, dict):
            return graph_error(400, "BadRequest", f"Invalid KerberosDomain: {problem}.")
        existed = self._write_domain(key, body, initiated_by=None, signed_in_as=_signed_in_as(request))
        return web.json_response(self.state.kerberos_domains[key], status=200 if existed else 201)

    async def _store_patch(self, request: web.Request) -> web.Response:
        checked = self._store_request(request)
        if isinstance(checked, web.Response):
            return checked
        key = checked
        current = self.state.kerberos_domains.get(key)
        if current is None:
            return graph_error(404, "Request_ResourceNotFound", "KerberosDomain not found.")
        changes = await self._json_body(request)
        if not isinstance(changes, dict) or set(changes) - set(STORE_FIELDS) or "domainDnsName" in changes:
            return graph_error(400, "BadRequest", "Invalid KerberosDomain update: unknown or read-only properties.")
        merged = {**current, **changes}
        problem = valid_domain_json(merged)
        if problem:
            return graph_error(400, "BadRequest", f"Invalid KerberosDomain: {problem}.")
        self._write_domain(key, merged, initiated_by=None, signed_in_as=_signed_in_as(request))
        return web.json_response(self.state.kerberos_domains[key])

    async def _store_delete(self, request: web.Request) -> web.Response:
        checked = self._store_request(request)
        if isinstance(checked, web.Response):
            return checked
        key = checked
        if self.state.kerberos_domains.pop(key, None) is None:
            return graph_error(404, "Request_ResourceNotFound", "KerberosDomain not found.")
        self.add_audit_event(key, "Delete kerberos domain", datetime.now(UTC), initiated_by_user=_signed_in_as(request))
        return web.Response(status=204)

    async def _admin_seed_domain(self, request: web.Request) -> web.Response:
        """A KerberosDomain as the module would have written it (no audit event unless ``?audit=1``)."""
        body = await self._json_body(request)
        problem = valid_domain_json(body)
        if (
            problem is None
            and isinstance(body, dict)
            and str(body["domainDnsName"]).lower() != request.match_info["domain"].lower()
        ):
            problem = "domainDnsName does not match the URL"
        if problem or not isinstance(body, dict):
            return web.json_response({"error": f"Invalid KerberosDomain: {problem}"}, status=400)
        self.put_kerberos_domain(body, audit=request.query.get("audit") == "1")
        return web.json_response(self.kerberos_domain(request.match_info["domain"]), status=201)

    async def _admin_forget_domain(self, request: web.Request) -> web.Response:
        found = self.delete_kerberos_domain(request.match_info["domain"], audit=request.query.get("audit") == "1")
        return web.json_response({"deleted": found}, status=200 if found else 404)
