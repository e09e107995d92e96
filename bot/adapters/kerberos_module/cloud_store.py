"""The cloud half of the Kerberos module emulator: Entra's KerberosDomain object in the stand-in.

The real object has no public API (the module reaches it through Entra Connect's sync service);
the emulator keeps it in the Entra stand-in so that status reads the Cloud* fields over HTTPS with a
real token, as the module would.
"""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import quote

from bot.adapters.entra_auth import EntraApp, EntraHttp
from bot.domain.model import CloudKerberosDomain


class CloudKerberosDomainStore:
    def __init__(self, app: EntraApp, *, base_url: str) -> None:
        self._base = f"{base_url.rstrip('/')}/_emulator/tenants/{quote(app.tenant_id)}/kerberosDomains"
        self._http = EntraHttp(app, scope="https://graph.microsoft.com/.default", service="Entra (KerberosDomain)")
        self.tokens = self._http.tokens

    @property
    def requests(self) -> int:
        return self._http.requests

    def _url(self, domain: str) -> str:
        return f"{self._base}/{quote(domain.lower())}"

    async def get(self, domain_dns_name: str) -> CloudKerberosDomain | None:
        response = await self._http.request("GET", self._url(domain_dns_name))
        if response.status_code == 404:
            return None
        body = response.json()
        return CloudKerberosDomain(
            id=int(body["id"]),
            display_name=str(body["displayName"]),
            domain_dns_name=str(body["domainDnsName"]),
            key_version=int(body["keyVersion"]),
            key_updated_on=datetime.fromisoformat(str(body["keyUpdatedOn"])).astimezone(UTC),
            trust_display=body.get("trustDisplay"),
            top_level_names=tuple(body.get("topLevelNames") or ()),
        )

    async def put(self, domain: CloudKerberosDomain) -> None:
        await self._http.request(
            "PUT",
            self._url(domain.domain_dns_name),
            json={
                "id": domain.id,
                "displayName": domain.display_name,
                "domainDnsName": domain.domain_dns_name,
                "keyVersion": domain.key_version,
                "keyUpdatedOn": domain.key_updated_on.astimezone(UTC).isoformat(),
                "trustDisplay": domain.trust_display,
                "topLevelNames": list(domain.top_level_names),
            },
        )

    async def delete(self, domain_dns_name: str) -> None:
        await self._http.request("DELETE", self._url(domain_dns_name))

    async def close(self) -> None:
        await self._http.close()
