"""The PowerShell the bot sends, checked where it cannot run (these machines have no PowerShell): every
script and the JEA role capability parse without an error under tree-sitter's PowerShell grammar, and every
cmdlet of Microsoft's module they call, or the bot's invocations name, is called with parameters its
documentation gives (tests/fixtures/module/cmdlets.json, with its sources)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from itertools import product
from pathlib import Path

import pytest
import tree_sitter_powershell
from tree_sitter import Language, Node, Parser

from bot.adapters.kerberos_module.remoting import powershell as ps
from bot.domain.ports import SetServerOptions

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = sorted(
    [*(ROOT / "bot/adapters/kerberos_module/remoting/scripts").glob("*.ps1"), *(ROOT / "deploy/jea").glob("*.ps*")]
)
DOCUMENTED = json.loads((ROOT / "tests/fixtures/module/cmdlets.json").read_text(encoding="utf-8"))
CMDLETS = {name.lower(): set(params) for name, params in DOCUMENTED["cmdlets"].items()}
COMMON = set(DOCUMENTED["common_parameters"])
PARSER = Parser(Language(tree_sitter_powershell.language()))


def nodes(node: Node, kind: str) -> Iterator[Node]:
    if node.type == kind:
        yield node
    for child in node.children:
        yield from nodes(child, kind)


def problems(source: bytes) -> list[str]:
    tree = PARSER.parse(source)
    return [
        f"line {n.start_point[0] + 1}: {'missing ' + n.type if n.is_missing else 'cannot parse'}"
        for n in [*nodes(tree.root_node, "ERROR"), *_missing(tree.root_node)]
    ]


def _missing(node: Node) -> Iterator[Node]:
    if node.is_missing:
        yield node
    for child in node.children:
        yield from _missing(child)


def module_calls(source: bytes) -> Iterator[tuple[str, list[str]]]:
    """(cmdlet, its -Parameters) of every call of the module's cmdlets written out in a script."""
    for command in nodes(PARSER.parse(source).root_node, "command"):
        name = command.child_by_field_name("command_name")
        if name is None or name.text is None or name.text.decode().lower() not in CMDLETS:
            continue
        parameters = [
            (p.text or b"").decode().lstrip("-").split(":")[0]
            for elements in command.children
            if elements.type == "command_elements"
            for p in elements.children
            if p.type == "command_parameter"
        ]
        yield name.text.decode(), parameters


def test_the_grammar_finds_a_broken_script() -> None:
    assert problems(b"Set-AzureADKerberosServer -Domain (\n") and not problems(b"Get-Date -Format o\n")


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_every_script_the_bot_sends_and_the_jea_role_parse(script: Path) -> None:
    assert problems(script.read_bytes()) == []


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_the_scripts_call_the_module_with_documented_parameters_only(script: Path) -> None:
    for cmdlet, parameters in module_calls(script.read_bytes()):
        unknown = set(parameters) - CMDLETS[cmdlet.lower()] - COMMON
        assert not unknown, f"{script.name}: {cmdlet} -{', -'.join(sorted(unknown))} is not documented"


def test_every_invocation_the_bot_builds_is_documented() -> None:
    invocations = [ps.get_server("contoso.com"), ps.remove_trusted_domain_object("contoso.com")]
    invocations.append(ps.remove_server("contoso.com"))
    for trust, names, rotate, force in product([False, True], [(), ("windows.net",)], [False, True], [False, True]):
        options = SetServerOptions(
            setup_cloud_trust=trust, top_level_names=names, rotate_server_key=rotate, force=force
        )
        invocations.append(ps.set_server("contoso.com", options))
    for invocation in invocations:
        documented = CMDLETS[invocation.cmdlet.lower()]
        used = set(invocation.parameters) | set(invocation.switches)
        assert used <= documented, f"{invocation.cmdlet}: {sorted(used - documented)} not documented"
        # run.ps1 adds the credentials where the host's Get-Command shows them
        assert {"DomainCredential", "CloudCredential"} <= documented
    assert {name.lower() for name in ps.JEA_FUNCTIONS} == set(CMDLETS)  # one JEA function per documented cmdlet


def test_the_jea_functions_take_the_parameters_the_bot_passes() -> None:
    source = (ROOT / "deploy/jea/KerberosBot.psrc").read_bytes()
    tree = PARSER.parse(source)
    declared: dict[str, set[str]] = {}
    for entry in nodes(tree.root_node, "hash_literal_expression"):
        text = (entry.text or b"").decode()
        named = [f for f in ps.JEA_FUNCTIONS.values() if f"Name = '{f}'" in text]
        blocks = list(nodes(entry, "param_block"))
        if len(named) != 1 or not blocks:  # the hashtable of one function definition, not the file's
            continue
        name = named[0]
        variables = {(v.text or b"").decode().lstrip("$") for v in nodes(blocks[0], "variable")}
        declared[name] = {v.lower() for v in variables}
    options = SetServerOptions(
        setup_cloud_trust=True, top_level_names=("windows.net",), rotate_server_key=True, force=True
    )
    for invocation in (ps.get_server("c"), ps.set_server("c", options), ps.remove_server("c")):
        function = ps.JEA_FUNCTIONS[invocation.cmdlet]
        passed = {p.lower() for p in [*invocation.parameters, *invocation.switches, "Endpoint"]}
        assert passed <= declared[function], f"{function} lacks {sorted(passed - declared[function])}"
