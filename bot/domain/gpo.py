"""The KDC proxy Group Policy value clients need for the incoming trust-based flow.

The host is the sign-in host of the tenant's cloud, fixed per cloud (Microsoft's national cloud
endpoints), never whatever authority host the bot itself is configured with (a proxy, or the
sandbox's stand-in): clients contact it directly.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.domain.model import KERBEROS_REALM

# The clouds as Set-AzureADKerberosServerEndpoint numbers them, and each one's sign-in host
CLOUD_LOGIN_HOSTS = {
    0: "login.microsoftonline.com",  # public (global) cloud
    1: "login.partner.microsoftonline.cn",  # Microsoft Azure operated by 21Vianet (China)
    2: "login.microsoftonline.us",  # Azure Government
}
CLOUD_NAMES = {0: "public cloud", 1: "Azure operated by 21Vianet", 2: "Azure Government"}


@dataclass(frozen=True)
class KdcProxySetting:
    """Administrative Templates\\System\\Kerberos\\Specify KDC proxy servers for Kerberos clients."""

    tenant_id: str
    cloud: int = 0  # the module's endpoint setting: 0 public, 1 China, 2 US Government

    @property
    def value_name(self) -> str:
        return KERBEROS_REALM

    @property
    def host(self) -> str:
        return CLOUD_LOGIN_HOSTS[self.cloud]

    @property
    def value(self) -> str:
        # Microsoft's format: a space after "https" and before the closing "/".
        return f"<https {self.host}:443:{self.tenant_id}/kerberos />"
