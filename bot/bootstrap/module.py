"""The Kerberos module the bot changes AD and Entra through: the emulator (the sandbox, the tests) or
Microsoft's module over PowerShell Remoting (production)."""

from __future__ import annotations

from collections.abc import Mapping

from bot.adapters.kerberos_module.emulator.cloud_store import CloudKerberosDomainStore
from bot.adapters.kerberos_module.emulator.module import EmulatedDomain, KerberosModuleEmulator
from bot.adapters.kerberos_module.emulator.on_prem import EmulatedOnPremModule
from bot.adapters.kerberos_module.remoting.calls import ModuleCredentials, RemotingSecrets, RemotingTarget, Timeouts
from bot.adapters.kerberos_module.remoting.module import RemotingKerberosModule
from bot.adapters.kerberos_module.remoting.winrm_kerberos import use_krb5_config
from bot.bootstrap.adapters import entra_app, ldap_endpoint, secret_of
from bot.config import BotConfig, RemotingConfig
from bot.domain.ports import ActiveDirectory


def build_emulator(config: BotConfig, directories: Mapping[str, ActiveDirectory]) -> KerberosModuleEmulator:
    emulator = config.kerberos_module.emulator
    assert emulator is not None  # validated by KerberosModuleConfig
    cloud = CloudKerberosDomainStore(entra_app(config.entra), base_url=emulator.cloud_url)
    domains: dict[str, EmulatedDomain] = {}
    for domain in config.domains:
        extra = emulator.domains.get(domain.name)
        where = f"kerberos_module.emulator.domains.{domain.name}.admin_password"
        on_prem = EmulatedOnPremModule(
            ldap_endpoint(
                domain,
                user=extra.admin_user if extra else None,
                password=secret_of(extra.admin_password, where) if extra and extra.admin_password else None,
            ),
            samba_conf=extra.samba_conf if extra else None,
        )
        domains[domain.name] = EmulatedDomain(
            directory=directories[domain.name],
            on_prem=on_prem,
            is_forest_root=domain.forest_root_name == domain.name,
        )
    return KerberosModuleEmulator(domains, cloud)


def build_remoting(remoting: RemotingConfig) -> RemotingKerberosModule:
    """The real module on the Windows management host; secrets are resolved here, and again every
    ``reread_secrets_minutes`` where their source can change under a running bot (a file, Key Vault)."""
    if remoting.krb5_conf is not None:
        use_krb5_config(remoting.krb5_conf)  # process-global: before the first Kerberos call
    secrets = remoting_secrets(remoting)
    target = RemotingTarget(
        host=remoting.host,
        port=remoting.port,
        ssl=remoting.ssl,
        cert_validation=str(remoting.cert_validation)
        if not isinstance(remoting.cert_validation, bool)
        else remoting.cert_validation,
        auth=remoting.auth,
        username=remoting.username,
        password=secrets.password,
        configuration_name=remoting.session_configuration,
        connect_timeout_seconds=remoting.connect_timeout_seconds,
        keytab=str(remoting.keytab) if remoting.keytab is not None else None,
        spn_hostname=remoting.spn_hostname,
        spn_service=remoting.spn_service,
    )
    sources = [remoting.password] + [c.password for c in (remoting.domain_credential, remoting.cloud_credential) if c]
    rotatable = any(source is not None and source.may_change for source in sources)
    return RemotingKerberosModule(
        target,
        secrets.credentials,
        secrets_again=(lambda: remoting_secrets(remoting)) if rotatable else None,
        secrets_every=remoting.reread_secrets_minutes * 60,
        min_module_version=remoting.min_module_version,
        endpoint=remoting.endpoint,
        concurrency=remoting.concurrency,
        host_parallelism=remoting.host_parallelism,
        timeouts=Timeouts(
            read=remoting.read_timeout_seconds,
            change=remoting.change_timeout_seconds,
            check=remoting.check_timeout_seconds,
        ),
    )


def remoting_secrets(remoting: RemotingConfig) -> RemotingSecrets:
    """The WinRM password and the module's credentials, read from their sources now."""
    where = "kerberos_module.remoting"
    credentials = None  # mode = "jea": the endpoint's functions hold the rights; nothing is sent
    if remoting.domain_credential is not None and remoting.cloud_credential is not None:
        credentials = ModuleCredentials(
            domain_user=remoting.domain_credential.user,
            domain_password=secret_of(remoting.domain_credential.password, f"{where}.domain_credential.password"),
            cloud_user=remoting.cloud_credential.user,
            cloud_password=secret_of(remoting.cloud_credential.password, f"{where}.cloud_credential.password"),
        )
    password = secret_of(remoting.password, f"{where}.password") if remoting.password else None
    return RemotingSecrets(password, credentials)
