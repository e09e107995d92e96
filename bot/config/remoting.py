"""[kerberos_module.remoting]: the Windows management host, and the WinRM security rules a
configuration must meet (HTTPS, certificate validation, no CredSSP, Kerberos where configured)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from bot.config.common import SecretSource, Strict


class ModuleCredential(Strict):
    """A credential the module receives (-DomainCredential, -CloudCredential)."""

    user: str = Field(min_length=1)
    password: SecretSource


_VERSION = re.compile(r"^\d+(\.\d+){0,3}$")


class RemotingConfig(Strict):
    """[kerberos_module.remoting]: the Windows management host that runs Microsoft's module."""

    host: str = Field(min_length=1, description="DNS name in the WinRM certificate, e.g. mgmt01.contoso.com")
    port: int = Field(default=5986, ge=1, le=65535)
    ssl: bool = True
    cert_validation: bool | Path = Field(default=True, description="true (system CAs) or a CA bundle path")
    auth: Literal["negotiate", "kerberos", "ntlm", "credssp"] = "negotiate"
    username: str | None = Field(
        default=None, description="the account the bot connects as (Kerberos: svc@CONTOSO.COM, the realm in capitals)"
    )
    password: SecretSource | None = None
    keytab: Path | None = Field(
        default=None, description="kerberos/negotiate: a client keytab instead of a password (username picks the entry)"
    )
    spn_hostname: str | None = Field(
        default=None, description="the host part of the SPN when host is an IP address or an alias"
    )
    spn_service: str = Field(default="HTTP", min_length=1, description="the service part of the SPN (HTTP/<host>)")
    krb5_conf: Path | None = Field(
        default=None, description="the krb5.conf to use (sets KRB5_CONFIG for the whole bot process at start-up)"
    )
    mode: Literal["full", "jea"] = Field(
        default="full",
        description="full: RUN_SCRIPT in a full-language session, with the domain and cloud credentials; jea: "
        "the deploy/jea endpoint's fixed functions, which hold the rights on the host (no credential is sent)",
    )
    configuration_name: str | None = Field(
        default=None, description="the session configuration; default Microsoft.PowerShell (full) or KerberosBot (jea)"
    )
    domain_credential: ModuleCredential | None = None
    cloud_credential: ModuleCredential | None = None
    concurrency: int = Field(default=1, ge=1, le=8, description="module calls at once on this host")
    host_parallelism: int | None = Field(
        default=None,
        ge=1,
        le=64,
        description="domains one session reads at once on the host (a status of every domain); unset: enough for two "
        "rounds of the domains asked, at least 8 and at most 64 (kerberos-bot check measures the session's memory)",
    )
    reread_secrets_minutes: float = Field(
        default=5.0,
        ge=0,
        le=1440,
        description="how often password, domain_credential and cloud_credential are read again where they are files "
        "or Key Vault secrets, so that one rotated at its source is used without a restart; 0: before every call",
    )
    connect_timeout_seconds: float = Field(default=10.0, gt=0)
    read_timeout_seconds: float = Field(default=60.0, gt=0, description="Get-AzureAdKerberosServer")
    change_timeout_seconds: float = Field(default=180.0, gt=0, description="Set-/Remove-: a rotation can take a minute")
    check_timeout_seconds: float = Field(default=30.0, gt=0)
    min_module_version: str = "2.0.0"
    endpoint: Literal[0, 1, 2] | None = Field(
        default=None, description="Set-AzureADKerberosServerEndpoint before each call: 0 public, 1 China, 2 US Gov"
    )

    @field_validator("min_module_version")
    @classmethod
    def _version(cls, value: str) -> str:
        if not _VERSION.match(value.strip()):
            raise ValueError(f"'{value}' is not a module version such as 2.0.0")
        return value.strip()

    @field_validator("cert_validation")
    @classmethod
    def _validation(cls, value: bool | Path) -> bool | Path:
        if value is False:
            raise ValueError(
                "false would send the domain and cloud credentials to whoever answers on the path: give the CA "
                'bundle that signed the WinRM certificate instead (cert_validation = "/etc/kerberos-bot/ca.pem")'
            )
        if isinstance(value, Path) and not value.is_file():
            raise ValueError(f"CA bundle {value} does not exist")
        return value

    @field_validator("keytab", "krb5_conf")
    @classmethod
    def _existing_file(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"{value} does not exist (or is not a file)")
        return value

    @property
    def session_configuration(self) -> str:
        if self.configuration_name:
            return self.configuration_name
        return "KerberosBot" if self.mode == "jea" else "Microsoft.PowerShell"

    @model_validator(mode="after")
    def _mode(self) -> RemotingConfig:
        given = [n for n in ("domain_credential", "cloud_credential") if getattr(self, n) is not None]
        if self.mode == "full" and len(given) != 2:
            missing = {"domain_credential", "cloud_credential"} - set(given)
            raise ValueError(
                f'mode = "full" sends the module\'s credentials: give {" and ".join(sorted(missing))} (or use '
                'mode = "jea", where the host holds them: docs/management-host.md)'
            )
        if self.mode == "jea" and given:
            raise ValueError(
                f'mode = "jea": the endpoint\'s managed service account holds the AD rights and the host keeps the '
                f"cloud credential; remove {' and '.join(given)} from the bot's configuration"
            )
        if self.mode == "jea" and self.session_configuration.lower() == "microsoft.powershell":
            raise ValueError(
                'mode = "jea" needs the session configuration deploy/jea registers (configuration_name = '
                '"KerberosBot"), not the full-language Microsoft.PowerShell'
            )
        return self

    @model_validator(mode="after")
    def _connection(self) -> RemotingConfig:
        if self.auth == "credssp":
            raise ValueError(
                "auth 'credssp' delegates the bot's password to the management host, where any code running "
                "there can reuse it; use 'kerberos' (or 'negotiate')"
            )
        kerberos = self.auth in ("kerberos", "negotiate")
        if not kerberos:
            if self.username is None or self.password is None:
                raise ValueError(
                    f"auth '{self.auth}' needs username and password (the account the bot connects as); only "
                    "kerberos and negotiate can use a keytab or a ticket cache instead"
                )
            given = [k for k in ("keytab", "spn_hostname", "krb5_conf") if getattr(self, k) is not None]
            if given:
                raise ValueError(f"{', '.join(given)} only apply to auth 'kerberos' or 'negotiate', not '{self.auth}'")
        if self.password is not None and self.username is None:
            raise ValueError("password without username: give the account the password belongs to")
        if self.keytab is not None and self.password is not None:
            raise ValueError("give either password or keytab, not both (the keytab replaces the password)")
        if kerberos and self.username is not None:
            self._kerberos_principal(self.username)
        if self.auth == "negotiate":
            signs = [k for k in ("keytab", "krb5_conf", "spn_hostname") if getattr(self, k) is not None]
            if self.username is not None and "@" in self.username and "\\" not in self.username:
                signs.append("a user@REALM username")
            if self.username is None:
                signs.append("no username (the ticket cache)")
            if signs:
                raise ValueError(
                    f"Kerberos is configured ({', '.join(signs)}), but auth 'negotiate' falls back to NTLM "
                    "silently whenever Kerberos fails: set auth = 'kerberos'"
                )
        if not self.ssl and self.auth != "kerberos":
            raise ValueError(
                f"ssl = false with auth '{self.auth}' would protect the credentials with NTLM's RC4 message "
                "encryption only: use the HTTPS listener (5986), or auth = 'kerberos' (AES) on 5985"
            )
        if self.change_timeout_seconds < self.read_timeout_seconds:
            raise ValueError("change_timeout_seconds must not be shorter than read_timeout_seconds")
        return self

    def _kerberos_principal(self, username: str) -> None:
        """MIT Kerberos takes principals (user@REALM); DOMAIN\\user is NTLM's form and has no realm."""
        user, at, realm = username.rpartition("@") if "@" in username else (username, "", "")
        if "\\" in username:
            if self.auth == "kerberos" or self.keytab is not None:
                raise ValueError(
                    f"username '{username}' is NTLM's DOMAIN\\user form: Kerberos needs the principal, e.g. "
                    "svc-kerberos-bot@CONTOSO.COM (the realm, i.e. the AD domain's DNS name in capitals)"
                )
            return  # negotiate with NTLM's form: NTLM only, as before
        if at and realm != realm.upper():
            raise ValueError(
                f"username '{username}': Kerberos realms are case-sensitive and AD's are in capitals: "
                f"{user}@{realm.upper()}"
            )
