"""Microsoft's AzureADHybridAuthenticationManagement module, driven over PowerShell Remoting.

This module holds what does not depend on the transport: the cmdlet invocations (every value is a
bound parameter, never text pasted into a script), the parsing of what the cmdlets return, and the
translation of the module's failures into messages an operator can act on. The remoting runner
(pypsrp) feeds these.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from bot.domain.errors import KerberosModuleError
from bot.domain.model import KerberosServerReport
from bot.domain.ports import SetServerOptions

MODULE = "AzureADHybridAuthenticationManagement"


@dataclass(frozen=True)
class Invocation:
    """One cmdlet call: its name, its parameters (bound by the runner), its switches."""

    cmdlet: str
    parameters: Mapping[str, str | Sequence[str]] = field(default_factory=dict)
    switches: tuple[str, ...] = ()

    def describe(self) -> str:
        """For journals and logs: the command line without values that could be secret."""
        parts = [self.cmdlet, *(f"-{name} <{name}>" for name in self.parameters), *(f"-{s}" for s in self.switches)]
        return " ".join(parts)


# JEA mode: the functions deploy/jea/KerberosBot.psrc exposes, one per module cmdlet (and the module's
# version for `check`). They run as the endpoint's group managed service account, which holds the AD
# rights, and read the cloud credential stored on the host: the bot sends no credential at all.
JEA_FUNCTIONS = {
    "Get-AzureAdKerberosServer": "Get-KerberosBotServer",
    "Set-AzureADKerberosServer": "Set-KerberosBotServer",
    "Remove-AzureADKerberosServerTrustedDomainObject": "Remove-KerberosBotTrustedDomainObject",
    "Remove-AzureAdKerberosServer": "Remove-KerberosBotServer",
    "Get-AzureADKerberosServerEndpoint": "Get-KerberosBotServerEndpoint",
    "Set-AzureADKerberosServerEndpoint": "Set-KerberosBotServerEndpoint",
}
JEA_MODULE_INFO = "Get-KerberosBotModuleInfo"
JEA_READ_MANY = "Get-KerberosBotServers"  # Get-AzureAdKerberosServer for many domains, read in parallel on the host
JEA_CONFIGURATION = "KerberosBot"  # the session configuration deploy/jea/Install-KerberosBotJea.ps1 registers


def get_server(domain: str) -> Invocation:
    return Invocation("Get-AzureAdKerberosServer", {"Domain": domain})


def set_server(domain: str, options: SetServerOptions) -> Invocation:
    parameters: dict[str, str | Sequence[str]] = {"Domain": domain}
    switches: list[str] = []
    if options.setup_cloud_trust:
        switches.append("SetupCloudTrust")
        if options.top_level_names:
            # one string, comma separated, as Microsoft documents it: -TopLevelNames "usgovcloudapi.net,windows.net"
            parameters["TopLevelNames"] = ",".join(options.top_level_names)
    if options.rotate_server_key:
        switches.append("RotateServerKey")
    if options.force:
        switches.append("Force")
    return Invocation("Set-AzureADKerberosServer", parameters, tuple(switches))


def remove_trusted_domain_object(domain: str) -> Invocation:
    return Invocation("Remove-AzureADKerberosServerTrustedDomainObject", {"Domain": domain})


def remove_server(domain: str) -> Invocation:
    return Invocation("Remove-AzureAdKerberosServer", {"Domain": domain})


# -- output ------------------------------------------------------------------------------------------

_FIELDS = {
    "ID": "id",
    "UserAccount": "user_account",
    "ComputerAccount": "computer_account",
    "DisplayName": "display_name",
    "DomainDnsName": "domain_dns_name",
    "KeyVersion": "key_version",
    "KeyUpdatedOn": "key_updated_on",
    "KeyUpdatedFrom": "key_updated_from",
    "CloudDisplayName": "cloud_display_name",
    "CloudDomainDnsName": "cloud_domain_dns_name",
    "CloudId": "cloud_id",
    "CloudKeyVersion": "cloud_key_version",
    "CloudKeyUpdatedOn": "cloud_key_updated_on",
    "CloudTrustDisplay": "cloud_trust_display",
}
_INTS = {"id", "key_version", "cloud_id", "cloud_key_version"}
_TIMES = {"key_updated_on", "cloud_key_updated_on"}
_MS_DATE = re.compile(r"/Date\((-?\d+)([+-]\d{4})?\)/")


def _time(value: Any) -> datetime | None:
    if value in (None, ""):
        return None
    text = str(value).strip()
    if match := _MS_DATE.search(text):  # Windows PowerShell 5.1's ConvertTo-Json
        return datetime.fromtimestamp(int(match.group(1)) / 1000, UTC)
    for fmt in ("%m/%d/%Y %I:%M:%S %p", "%m/%d/%Y %H:%M:%S"):  # Format-List, en-US, as in Microsoft's samples
        try:
            return datetime.strptime(text, fmt).replace(tzinfo=UTC)
        except ValueError:
            pass
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))  # PowerShell 7
    except ValueError as exc:
        raise KerberosModuleError(f"The module returned a time the bot cannot read: {text!r}.") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _trust(value: Any) -> tuple[str | None, tuple[str, ...]]:
    """CloudTrustDisplay is empty, a type name, or (as JSON) an object that carries the top-level names."""
    if value in (None, ""):
        return None, ()
    if isinstance(value, dict):
        names = value.get("TopLevelNames") or value.get("topLevelNames") or ()
        if isinstance(names, str):
            names = [n.strip() for n in names.split(",") if n.strip()]
        return "Microsoft.AzureAD.Kdc.Service.TrustDisplay", tuple(str(n) for n in names)
    return str(value).strip(), ()


def _report(values: Mapping[str, Any]) -> KerberosServerReport:
    fields: dict[str, Any] = {}
    for source, target in _FIELDS.items():
        value = values.get(source)
        if target == "cloud_trust_display":
            fields[target], fields["cloud_top_level_names"] = _trust(value)
        elif value in (None, ""):
            fields[target] = None
        elif target in _INTS:
            fields[target] = int(value)
        elif target in _TIMES:
            fields[target] = _time(value)
        else:
            fields[target] = " ".join(str(value).split())  # Format-List puts spaces after commas in DNs
    for dn in ("user_account", "computer_account"):
        if fields.get(dn):
            fields[dn] = re.sub(r",\s+", ",", fields[dn])
    return KerberosServerReport(**fields)


def parse_server(output: str) -> KerberosServerReport:
    """``Get-AzureAdKerberosServer``'s output: JSON (``ConvertTo-Json``) or its Format-List text."""
    text = output.strip().lstrip("\ufeff")
    if not text:
        return KerberosServerReport()
    if text.startswith(("{", "[")):
        data = json.loads(text)
        if isinstance(data, list):
            data = data[0] if data else {}
        return _report(data)
    values: dict[str, str] = {}
    for line in text.splitlines():
        name, sep, value = line.partition(":")
        if sep and name.strip() in _FIELDS:
            values[name.strip()] = value.strip()
    return _report(values)


def parse_servers(
    lines: Sequence[str], domains: Sequence[str]
) -> tuple[dict[str, KerberosServerReport | KerberosModuleError], int | None]:
    """``read_many.ps1``'s (or ``Get-KerberosBotServers``') output: one JSON line per domain, its report or its
    error, and a last line on the session itself (``{"Session": {"PeakMemoryMB": n}}``), whose peak memory is
    returned beside the answers (None: not said). A domain the output does not name is answered with an error
    too: every domain asked gets an answer."""
    answers: dict[str, KerberosServerReport | KerberosModuleError] = {}
    asked = {name.lower(): name for name in domains}
    peak_memory_mb = None
    for line in lines:
        try:
            data = json.loads(line.strip().lstrip("\ufeff"))
            if isinstance(data, dict) and "Session" in data:
                peak_memory_mb = _peak_memory(data["Session"])
                continue
            name = asked[str(data["Domain"]).lower()]
        except (ValueError, TypeError, KeyError) as exc:
            raise KerberosModuleError("The module's output for many domains could not be read.") from exc
        if "Error" in data:
            answers[name] = translate_failure("Get-AzureAdKerberosServer", str(data["Error"] or "no error text"))
        else:
            try:
                answers[name] = parse_server(json.dumps(data.get("Report")) if data.get("Report") else "")
            except (ValueError, TypeError) as exc:
                answers[name] = KerberosModuleError(f"The module's report for {name} could not be read ({exc}).")
    for name in domains:
        answers.setdefault(name, KerberosModuleError(f"The module's output named no report for {name}."))
    return answers, peak_memory_mb


def _peak_memory(session: object) -> int | None:
    value = session.get("PeakMemoryMB") if isinstance(session, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


# -- errors ------------------------------------------------------------------------------------------

CLOUD_CREDENTIAL_MFA = (
    "The cloud credential's sign-in to Entra ID asks for multi-factor authentication or is blocked by "
    "Conditional Access, and the module's -CloudCredential sign-in cannot answer an MFA prompt (AADSTS50076/50079: "
    "MFA required or to be registered; 50158: an external security challenge; 53003: blocked by Conditional "
    "Access). Nothing was changed. Fix it in Entra for this account only: see docs/management-host.md, "
    "'The cloud credential and MFA' (a Conditional Access exclusion limited to the management host's named "
    "location, or running the module interactively for this change)."
)

SHELL_MEMORY = re.compile(r"OutOfMemoryException|provider host process did not return a proper response", re.I)
SHELL_MEMORY_MESSAGE = (
    "The session on the management host ran out of memory: WinRM ends a shell that passes its memory quota "
    "(MaxMemoryPerShellMB, 1024 MB by default). If this was a status of every domain, set host_parallelism lower "
    "(kerberos-bot check measures the peak of a status of every domain) or raise the quota of the bot's endpoint."
)

_KNOWN_FAILURES: tuple[tuple[re.Pattern[str], str], ...] = (
    (SHELL_MEMORY, SHELL_MEMORY_MESSAGE),
    (
        re.compile(r"0x549|ERROR_INVALID_DOMAIN_STATE", re.I),
        "The cloud trust can only be created in the forest root domain (LsaCreateTrustedDomainEx 0x549): set up the "
        "root with -SetupCloudTrust first, then this child domain without it.",
    ),
    (
        re.compile(r"Collision setting top level names", re.I),
        "Another trust already routes these top-level names (e.g. windows.net); remove or change that trust, or "
        "choose other -TopLevelNames.",
    ),
    (
        re.compile(r"SecondaryKrbTgtNumber\s+Value\s*:\s*0", re.I),
        "The domain credential lacks the rights to create the Kerberos server (Domain Admins, and Enterprise Admins "
        "for the forest).",
    ),
    (
        re.compile(r"insufficient access rights", re.I),
        "The domain credential has insufficient access rights (it needs SeEnableDelegationPrivilege, as Domain "
        "Admins have).",
    ),
    (
        re.compile(r"Strong authentication is required", re.I),
        "The DC requires LDAP signing; run the module on a host whose LDAP connections are signed.",
    ),
    (
        re.compile(r"module \S+ (\S+) is older than the required (\S+)", re.I),
        f"The {MODULE} module on the management host is older than the configured min_module_version "
        f"(Update-Module {MODULE}).",
    ),
    (
        re.compile(
            r"is not recognized as the name of a cmdlet|module .* was not loaded|could not be loaded|module \S+ is not "
            r"installed",
            re.I,
        ),
        f"The {MODULE} module is not installed on the management host (Install-Module {MODULE}).",
    ),
    (
        # Microsoft enforces MFA for admin accounts; -CloudCredential cannot answer an MFA prompt
        re.compile(r"AADSTS(?:50076|50079|50158|53003)", re.I),
        CLOUD_CREDENTIAL_MFA,
    ),
    (
        re.compile(r"AADSTS\d+", re.I),
        "The module's sign-in to Entra ID failed (see the AADSTS code); check the cloud credential, its role "
        "(Hybrid Identity Administrator) and that it needs no interactive MFA.",
    ),
)


def translate_failure(cmdlet: str, error_text: str) -> KerberosModuleError:
    """The module's error record -> a message an operator can act on (the original stays in the log)."""
    for pattern, message in _KNOWN_FAILURES:
        if pattern.search(error_text):
            code = pattern.search(error_text)
            detail = f" ({code.group(0)})" if code and code.group(0).upper().startswith(("0X", "AADSTS")) else ""
            if code and code.re.groups == 2:  # the version check names both versions
                detail = f" (installed {code.group(1)}, required {code.group(2)})"
            return KerberosModuleError(f"{cmdlet} failed: {message}{detail}")
    first_line = error_text.strip().splitlines()[0][:300] if error_text.strip() else "no error text"
    return KerberosModuleError(f"{cmdlet} failed: {first_line}")
