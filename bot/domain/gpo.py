"""The KDC proxy Group Policy value clients need for the incoming trust-based flow."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlparse

from bot.domain.model import KERBEROS_REALM


@dataclass(frozen=True)
class KdcProxySetting:
    """Administrative Templates\\System\\Kerberos\\Specify KDC proxy servers for Kerberos clients."""

    tenant_id: str
    authority_host: str = "https://login.microsoftonline.com"

    @property
    def value_name(self) -> str:
        return KERBEROS_REALM

    @property
    def value(self) -> str:
        # Microsoft's format: a space after "https" and before the closing "/".
        host = urlparse(self.authority_host).hostname or "login.microsoftonline.com"
        return f"<https {host}:443:{self.tenant_id}/kerberos />"
