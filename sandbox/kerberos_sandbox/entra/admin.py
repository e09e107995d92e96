"""The stand-in's own endpoints (header X-Stand-In-Key): fault injection per route, counts, token
expiry, reset, the device-code sign-ins; and the middleware that counts requests and injects faults."""

from __future__ import annotations

import asyncio
import secrets
from datetime import UTC, datetime

from aiohttp import web

from kerberos_sandbox.entra.base import (
    ADMIN_HEADER,
    GRAPH_ROLES,
    ROUTES,
    Fault,
    Handler,
    StandInBase,
    aadsts,
    graph_error,
)


class AdminApi(StandInBase):
    def _add_admin_routes(self, app: web.Application) -> None:
        app.router.add_post("/_standin/faults", self._admin_faults)
        app.router.add_delete("/_standin/faults", self._admin_clear_faults)
        app.router.add_post("/_standin/expire-tokens", self._admin_expire)
        app.router.add_get("/_standin/counts", self._admin_counts)
        app.router.add_post("/_standin/reset", self._admin_reset)
        app.router.add_get("/_standin/device-codes", self._admin_device_codes)
        app.router.add_post("/_standin/device-sign-in", self._admin_device_sign_in)
        app.router.add_post("/_standin/audit-events", self._admin_audit_event)

    async def _admin_audit_event(self, request: web.Request) -> web.Response:
        """{"domain", "activity", "at" (ISO 8601, default now), "initiated_by_user" | "initiated_by_app",
        "result"}: an audit event as Entra records one (say, a change made outside the bot)."""
        body = await self._json_body(request)
        if not isinstance(body, dict) or not body.get("domain") or not body.get("activity"):
            return web.json_response({"error": "expected a JSON object with domain and activity"}, status=400)
        try:
            at = datetime.fromisoformat(str(body["at"]).replace("Z", "+00:00")) if body.get("at") else datetime.now(UTC)
        except ValueError:
            return web.json_response({"error": "at must be an ISO 8601 time"}, status=400)
        event = self.add_audit_event(
            str(body["domain"]),
            str(body["activity"]),
            at,
            initiated_by_user=body.get("initiated_by_user"),
            initiated_by_app=body.get("initiated_by_app"),
            result=str(body.get("result", "success")),
        )
        return web.json_response(event, status=201)

    def clear_data(self) -> None:
        """Forget KerberosDomains, audit events and registered certificates; restore tenant and roles."""
        self.state.audit_events.clear()
        self.state.kerberos_domains.clear()
        self.state.certificates.clear()
        self.state.organization, self.state.verified_domains = self._initial
        self.state.roles = GRAPH_ROLES
        self.state.people.clear()

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
                return aadsts(400, "invalid_request", 90002, "Tenant not found.")
            if status == 401:
                return aadsts(401, "invalid_client", 7000222, "The provided client secret keys for app are expired.")
            if status == 403:
                return aadsts(403, "unauthorized_client", 7000112, "Application is disabled.")
            if status == 429:
                return aadsts(429, "temporarily_unavailable", None, "Too many requests; retry after the given time.")
            return aadsts(status, "temporarily_unavailable", None, "The service is temporarily unavailable.")
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
        return graph_error(status, code, message)

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
