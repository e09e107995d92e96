"""The cloud half of the Kerberos module emulator: Entra's KerberosDomain object in the stand-in.

The real object has no public API (the module reaches it through Entra Connect's sync service);
the emulator keeps it in the Entra stand-in so that status reads the Cloud* fields over HTTPS with a
real token, as the module would. Same sign-in (msal, token cache) and error mapping as the Graph
adapter: ``EntraAuthError``, ``EntraForbidden``, ``EntraThrottled``, ``EntraUnavailable``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from bot.adapters.entra.app import EntraApp, EntraHttp
from bot.domain.errors import EntraError
from bot.domain.model import CloudKerberosDomain, dns_name

_SERVICE = "Entra (KerberosDomain store)"


def domain_to_json(domain: CloudKerberosDomain) -> dict[str, Any]:
    return {
        "id": domain.id,
        "displayName": domain.display_name,
        "domainDnsName": domain.domain_dns_name,
        "keyVersion": domain.key_version,
        "keyUpdatedOn": domain.key_updated_on.astimezone(UTC).isoformat(),
        "trustDisplay": domain.trust_display,
        "topLevelNames": list(domain.top_level_names),
    }


def _from_json(body: dict[str, Any]) -> CloudKerberosDomain:
    return CloudKerberosDomain(
        id=int(body["id"]),
        display_name=str(body["displayName"]),
        domain_dns_name=str(body["domainDnsName"]),
        key_version=int(body["keyVersion"]),
        key_updated_on=datetime.fromisoformat(str(body["keyUpdatedOn"]).replace("Z", "+00:00")).astimezone(UTC),
        trust_display=body.get("trustDisplay"),
        top_level_names=tuple(str(n) for n in body.get("topLevelNames") or ()),
    )


class CloudKerberosDomainStore:
    """get/put/delete of one tenant's KerberosDomain objects at ``base_url`` (the stand-in's URL)."""

    def __init__(self, app: EntraApp, *, base_url: str, signed_in_as: str | None = None) -> None:
        self._app, self._base_url = app, base_url
        self._base = f"{base_url.rstrip('/')}/_emulator/tenants/{quote(app.tenant_id)}/kerberosDomains"
        # the module run by a person with -UserPrincipalName: Entra's audit log names them, not the app
        self._params = {"signedInAs": signed_in_as} if signed_in_as else None
        # The emulator signs in as the bot's app; a token for Graph is what the stand-in accepts.
        self._http = EntraHttp(
            app,
            scope="https://graph.microsoft.com/.default",
            service=_SERVICE,
            # the module writes this object with its cloud credential, not with a Graph permission
            forbidden="the cloud credential needs the Hybrid Identity Administrator role (or Global Administrator) "
            "in the tenant, as Microsoft's module does for the Kerberos server object",
        )
        self.tokens = self._http.tokens

    def signed_in_as(self, upn: str) -> CloudKerberosDomainStore:
        """The same store as a person signed in as ``upn`` uses it (an operator at the management host)."""
        return CloudKerberosDomainStore(self._app, base_url=self._base_url, signed_in_as=upn)

    @property
    def requests(self) -> int:
        """HTTP requests sent to the store (retries included)."""
        return self._http.requests

    @property
    def token_requests(self) -> int:
        return self.tokens.token_requests

    def _url(self, domain: str) -> str:
        return f"{self._base}/{quote(dns_name(domain), safe='')}"

    async def get(self, domain_dns_name: str) -> CloudKerberosDomain | None:
        """The KerberosDomain of ``domain_dns_name``, or None when Entra has none."""
        response = await self._http.request("GET", self._url(domain_dns_name))
        if response.status_code == 404:
            return None
        try:
            return _from_json(response.json())
        except (ValueError, KeyError, TypeError) as exc:
            raise EntraError(f"{_SERVICE} answered with a KerberosDomain the bot cannot read.") from exc

    async def put(self, domain: CloudKerberosDomain) -> None:
        """Create or replace (Entra records "Add kerberos domain" or "Update kerberos domain")."""
        response = await self._http.request(
            "PUT", self._url(domain.domain_dns_name), json=domain_to_json(domain), params=self._params
        )
        if response.status_code == 404:
            raise EntraError(f"{_SERVICE} has no store for this tenant; check cloud_url and tenant_id.")

    async def delete(self, domain_dns_name: str) -> None:
        """Remove the object; a domain Entra does not have is already removed."""
        await self._http.request("DELETE", self._url(domain_dns_name), params=self._params)

    async def close(self) -> None:
        await self._http.close()
