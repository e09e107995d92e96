"""The sandbox's Samba AD DCs: each domain's instance (one DC, or two that replicate), where they live, and the
package's shell script that provisions, starts and stops them (``kerberos_sandbox/scripts``)."""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

from bot.domain.errors import ConfigurationError

SCRIPTS = Path(str(files("kerberos_sandbox") / "scripts"))  # installed as files, never zipped
SAMBA_SCRIPT = SCRIPTS / "samba-dc.sh"
PAIR_SCRIPT = SCRIPTS / "samba-pair.sh"  # a domain with two DCs that replicate
ADMIN_PASSWORD = "Passw0rd!Passw0rd"
# provisioning a pair from scratch takes about 20 s; a script still running after this is stuck
SAMBA_SCRIPT_LIMIT = 300.0


def samba_root() -> Path:
    """Where the private DCs live (``$KERBEROS_BOT_SAMBA_ROOT``); read when asked, so tests can move it."""
    return Path(os.environ.get("KERBEROS_BOT_SAMBA_ROOT", "/tmp/kerberos-bot-samba"))


@dataclass(frozen=True)
class SambaInstance:
    """One private Samba AD DC: where it lives and how ``scripts/samba-dc.sh`` is told about it."""

    realm: str  # CONTOSO.TEST
    netbios: str  # CONTOSO
    host: str  # the loopback address it listens on
    directory: Path  # SAMBA_DIR of samba-dc.sh
    admin_password: str = ADMIN_PASSWORD

    @property
    def name(self) -> str:
        return self.realm.lower()

    @property
    def ca_file(self) -> Path:
        return self.directory / "private" / "tls" / "ca.pem"

    @property
    def smb_conf(self) -> Path:
        return self.directory / "etc" / "smb.conf"

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "SAMBA_DIR": str(self.directory),
            "SAMBA_REALM": self.realm,
            "SAMBA_DOMAIN": self.netbios,
            "SAMBA_ADMINPASS": self.admin_password,
            "SAMBA_IFACE": self.host,
        }


@dataclass(frozen=True)
class SandboxDomain:
    """One Samba AD DC of the sandbox and the state the demo seeds it into."""

    name: str
    netbios: str
    address: str  # loopback address Samba binds to
    cloud_trust: bool  # seed with -SetupCloudTrust (else: FIDO only)
    replica: str | None = None  # a second DC of the domain on this address, replicating with the first
    forest_root: str | None = None  # configured as a child of this domain (Samba: a forest of its own)

    @property
    def pair_root(self) -> Path:
        return samba_root() / f"{self.name}-pair"

    @property
    def samba(self) -> SambaInstance:
        """The (first) DC: the one the emulator writes to."""
        if self.replica is not None:
            return SambaInstance(self.name.upper(), self.netbios, self.address, self.pair_root / "dc1")
        return SambaInstance(self.name.upper(), self.netbios, self.address, samba_root() / self.name)

    @property
    def addresses(self) -> tuple[str, ...]:
        return (self.address, self.replica) if self.replica else (self.address,)

    @property
    def ca_file(self) -> Path:
        """What the bot trusts for LDAPS: each DC has its own certificate; a pair has a bundle of both."""
        return self.pair_root / "ca-bundle.pem" if self.replica else self.samba.ca_file


DEFAULT_DOMAINS = (
    # contoso.test on two DCs that replicate (scripts/samba-pair.sh); fabrikam.test on one
    SandboxDomain("contoso.test", "CONTOSO", "127.0.0.1", cloud_trust=True, replica="127.0.0.3"),
    SandboxDomain("fabrikam.test", "FABRIKAM", "127.0.0.2", cloud_trust=False),
)


async def samba(action: str, domain: SandboxDomain, *extra: str) -> None:
    """Run ``scripts/samba-dc.sh <action>`` for one domain (``scripts/samba-pair.sh`` for a domain with a
    replica: ``up`` restores the pristine pair, also for ``reset``); its own output explains failures."""
    script = PAIR_SCRIPT if domain.replica else SAMBA_SCRIPT
    if not script.exists():
        raise ConfigurationError(f"{script} is missing: reinstall the sandbox (make install)")
    args = [action, *extra]
    if domain.replica:
        pair_action = "up" if action in ("up", "reset") else action
        args = [pair_action, str(domain.pair_root)]
        args += [domain.address, domain.replica] if pair_action == "up" else list(extra)
    proc = await asyncio.create_subprocess_exec(
        "bash",
        str(script),
        *args,
        env=domain.samba.env(),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        output, _ = await asyncio.wait_for(proc.communicate(), SAMBA_SCRIPT_LIMIT)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise ConfigurationError(
            f"{script.name} {action} for {domain.name} did not finish within {SAMBA_SCRIPT_LIMIT:g} s; its logs are "
            f"under {domain.samba.directory}"
        ) from None
    if proc.returncode != 0:
        detail = output.decode(errors="replace")
        raise ConfigurationError(f"samba-dc.sh {action} for {domain.name} failed (exit {proc.returncode}):\n{detail}")
