"""A local HTTPS stand-in of Azure Key Vault's secrets API, as azure-keyvault-secrets talks to it.

``async with KeyVaultStandIn(tenant_authority) as vault:``; ``vault.url`` is the vault URL. A request without
a token is answered 401 with Key Vault's Bearer challenge (the authority, and the vault itself as the
resource, so the SDK's check that the resource belongs to the vault passes on loopback); a token is taken
when it is for this vault (its ``aud``). ``put`` adds a version of a secret; ``deny`` makes reads by an
object id refused (403), as a missing access policy or role is."""

from __future__ import annotations

import ssl
import tempfile
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jwt
import trustme
from aiohttp import web

from bot.entrypoints.web import start_site


class KeyVaultStandIn:
    def __init__(self, authority: str) -> None:
        self._authority = authority  # where the SDK is sent for a token (the Entra stand-in's tenant URL)
        self.secrets: dict[str, list[tuple[str, str]]] = {}  # name -> [(version, value)], the newest last
        self.denied: set[str] = set()  # object ids whose reads are refused
        self.reads: list[tuple[str, str]] = []  # (object id, secret) of every read served
        self._dir = tempfile.TemporaryDirectory(prefix="key-vault-standin-")
        self._ca = trustme.CA()
        self.ca_file = Path(self._dir.name) / "ca.pem"
        self._ca.cert_pem.write_to_path(str(self.ca_file))
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def __aenter__(self) -> KeyVaultStandIn:
        app = web.Application()
        app.router.add_get("/secrets/{name}", self._get)
        app.router.add_get("/secrets/{name}/", self._get)  # the SDK's form for the current version
        app.router.add_get("/secrets/{name}/{version}", self._get)
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._ca.issue_cert("127.0.0.1").configure_cert(tls)
        self._runner, port = await start_site(app, "127.0.0.1", 0, ssl_context=tls)
        self.url = f"https://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        self._dir.cleanup()

    def put(self, name: str, value: str) -> str:
        version = uuid.uuid4().hex
        self.secrets.setdefault(name, []).append((version, value))
        return version

    async def _get(self, request: web.Request) -> web.Response:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme != "Bearer" or not token:
            challenge = f'Bearer authorization="{self._authority}", resource="{self.url}"'
            return _error(401, "Unauthorized", "AKV10000: Request is missing a Bearer token.", challenge)
        claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
        if str(claims.get("aud", "")).rstrip("/") != self.url:
            return _error(401, "Unauthorized", "AKV10022: Invalid audience.", None)
        reader = str(claims.get("oid", ""))
        name = request.match_info["name"]
        if reader in self.denied:
            return _error(403, "Forbidden", f"The user, group or application '{reader}' does not have secrets get "
                          "permission on key vault.", None)  # fmt: skip
        versions = self.secrets.get(name, [])
        wanted = request.match_info.get("version")
        found = next((v for v in versions if v[0] == wanted), None) if wanted else (versions[-1] if versions else None)
        if found is None:
            return _error(
                404, "SecretNotFound", f"A secret with (name/id) {name} was not found in this key vault.", None
            )
        self.reads.append((reader, name))
        now = int(datetime.now(UTC).timestamp())
        return web.json_response(
            {
                "value": found[1],
                "id": f"{self.url}/secrets/{name}/{found[0]}",
                "attributes": {"enabled": True, "created": now, "updated": now, "recoveryLevel": "Recoverable"},
            }
        )


def _error(status: int, code: str, message: str, challenge: str | None) -> web.Response:
    response = web.json_response({"error": {"code": code, "message": message}}, status=status)
    if challenge:
        response.headers["WWW-Authenticate"] = challenge
    return response
