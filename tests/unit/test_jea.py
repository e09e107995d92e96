"""The JEA endpoint shipped in deploy/jea exposes exactly the functions the bot calls, each a fixed
wrapper of one module cmdlet, in a NoLanguage session run as a group managed service account."""

from __future__ import annotations

import re
from pathlib import Path

from bot.adapters.kerberos_module.remoting import powershell as ps

JEA = Path(__file__).resolve().parents[2] / "deploy" / "jea"
PSRC = (JEA / "KerberosBot.psrc").read_text()
PSSC = (JEA / "KerberosBot.pssc").read_text()


def _visible() -> set[str]:
    block = re.search(r"VisibleFunctions = @\((.*?)\)", PSRC, re.S)
    assert block is not None
    return set(re.findall(r"'([A-Za-z-]+)'", block.group(1)))


def test_the_role_capability_exposes_exactly_what_the_bot_calls() -> None:
    assert _visible() == {*ps.JEA_FUNCTIONS.values(), ps.JEA_MODULE_INFO, ps.JEA_READ_MANY}
    defined = set(re.findall(r"Name = '([A-Za-z-]+)'", PSRC))
    assert _visible() <= defined
    for forbidden in ("VisibleCmdlets", "VisibleExternalCommands", "VisibleProviders", "VisibleAliases"):
        assert forbidden not in PSRC


def test_each_function_wraps_its_cmdlet_and_never_prompts() -> None:
    for cmdlet, function in ps.JEA_FUNCTIONS.items():
        body = PSRC.split(f"Name = '{function}'", 1)[1].split("Name = '", 1)[0]
        assert cmdlet.lower() in body.lower(), (function, cmdlet)
        if cmdlet.startswith(("Set-", "Remove-")):
            assert "Confirm" in body and "$false" in body, function  # a remoting session cannot answer a prompt
    assert "Domain = $Domain; CloudCredential = $cloud; Confirm = $false" in PSRC
    many = PSRC.split(f"Name = '{ps.JEA_READ_MANY}'", 1)[1].split("\n        @{", 1)[0]
    assert "Get-AzureADKerberosServer -Domain $Domain -CloudCredential" in many  # each domain, the stored credential
    assert "[string[]]$Domain" in many and "ValidatePattern" in many and "ValidateRange(1, 64)" in many


def test_the_session_is_no_language_and_runs_as_a_managed_service_account() -> None:
    assert "SessionType = 'RestrictedRemoteServer'" in PSSC and "LanguageMode = 'NoLanguage'" in PSSC
    assert re.search(r"GroupManagedServiceAccount = '[^']+\$'", PSSC)
    assert "RoleCapabilities = 'KerberosBot'" in PSSC and "TranscriptDirectory" in PSSC
    install = (JEA / "Install-KerberosBotJea.ps1").read_text()
    assert f"Register-PSSessionConfiguration -Name '{ps.JEA_CONFIGURATION}'" in install
