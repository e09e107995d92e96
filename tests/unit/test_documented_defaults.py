"""What the docs say the defaults are is what the configuration schema gives: a default changed in the code
fails here until the docs say it too."""

from __future__ import annotations

import re
from pathlib import Path
from typing import get_args

from pydantic import BaseModel

from bot.config import (
    ACTION_KEYS,
    ActionPolicyConfig,
    ApprovalsConfig,
    BotConfig,
    ChangesConfig,
    DomainConfig,
    EmulatorConfig,
    EmulatorDomain,
    EntraConfig,
    KerberosModuleConfig,
    LifecycleConfig,
    ModuleCredential,
    PolicyConfig,
    RemotingConfig,
    VerificationConfig,
)
from bot.config.connections import AuditConfig, HecSinkConfig, RedisEntraConfig, SyslogSinkConfig
from bot.config.runtime import OperatorsConfig

DOCS = Path(__file__).parents[2] / "docs"


def test_the_documented_approvals_and_verified_defaults_are_the_schemas() -> None:
    text = (DOCS / "approvals.md").read_text()
    counts = re.search(r"# defaults: (.+)", text)
    verified = re.search(r"# default: true for ([a-z_, ]+)", text)
    assert counts is not None and verified is not None, "docs/approvals.md's defaults comments moved"
    documented = {key: int(n) for key, n in re.findall(r"([a-z_]+) (\d+)", counts.group(1))}
    schema = ApprovalsConfig()
    assert documented == {key: schema.required(key) for key in ACTION_KEYS}
    assert {k.strip() for k in verified.group(1).split(",")} == {k for k in ACTION_KEYS if schema.verified(k)}


def test_the_documented_change_settings_defaults_are_the_schemas() -> None:
    text = (DOCS / "lifecycle.md").read_text()
    assert f"`[changes] max_freeze_days` ({ChangesConfig().max_freeze_days} by default)" in text


# docs/configuration.md's tables: each section's model, so that every key the docs name is checked against it
SECTIONS: dict[str, type[BaseModel]] = {
    "(top level)": BotConfig,
    "[policy]": PolicyConfig,
    "[entra]": EntraConfig,
    "[[domains]]": DomainConfig,
    "[domains]": DomainConfig,
    "[approvals]": ApprovalsConfig,
    "[approvals.<action>]": ActionPolicyConfig,
    "[audit]": AuditConfig,
    "[audit.syslog]": SyslogSinkConfig,
    "[audit.hec]": HecSinkConfig,
    "[changes]": ChangesConfig,
    "[operators]": OperatorsConfig,
    "[redis.entra]": RedisEntraConfig,
    "[lifecycle]": LifecycleConfig,
    "[approvals.verification]": VerificationConfig,
    "[kerberos_module]": KerberosModuleConfig,
    "[kerberos_module.remoting]": RemotingConfig,
    "[kerberos_module.remoting.domain_credential]": ModuleCredential,
    "[kerberos_module.emulator]": EmulatorConfig,
    '[kerberos_module.emulator.domains."<name>"]': EmulatorDomain,
}
_TOKEN = re.compile(r"`([^`]+)`|(\()|(\))|([^`()]+)")


def documented_keys() -> list[tuple[str, str, str | None]]:
    """(section, key, what its parenthesis or its row says the default is) for every key the tables name."""
    found: list[tuple[str, str, str | None]] = []
    section = ""
    for line in (DOCS / "configuration.md").read_text().splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split(" | ")] if line.startswith("|") else []
        if len(cells) < 3 or re.fullmatch(r"[-:]+", cells[0]):
            continue
        if cells[0]:
            section = cells[0].split(",")[0].strip("`")
        where, depth = section, 0
        keys: list[tuple[str, str]] = []
        said: dict[int, str] = {}  # the key's index -> the text of the parenthesis after it
        for quoted, opening, closing, text in _TOKEN.findall(cells[1].replace("\\|", "|")):
            if opening or closing:
                depth += 1 if opening else -1
            elif depth > 0 and keys:
                said[len(keys) - 1] = said.get(len(keys) - 1, "") + (f"`{quoted}`" if quoted else text)
            elif quoted and quoted.startswith("["):
                where = quoted  # a sub-table named in the same cell: `[audit.syslog]` `host`, ...
            elif quoted:
                keys.append((where, quoted))
        row_default = re.search(r"\(default ([^;),]+)", cells[2])
        if len(keys) == 1 and 0 not in said and row_default:
            said[0] = row_default.group(1)
        found += [(w, k, said.get(i)) for i, (w, k) in enumerate(keys)]
    return found


def as_documented(text: str) -> object | None:
    """A default as the docs write one (a number, true/false, a `literal`, a lone word); None for a description,
    a list of choices or a range."""
    text = text.strip()
    if "|" in text or " or " in text:  # choices, not a default
        return None
    if text.startswith("`"):
        return text.split("`")[1]
    word = re.split(r"[;,:]| ", text)[0]
    if re.fullmatch(r"-?\d+(\.\d+)?", word):
        return float(word)
    if word in ("true", "false"):
        return word == "true"
    return word if re.fullmatch(r"[A-Z]+", word) else None  # UTC


def test_every_key_in_the_configuration_docs_is_in_the_schema_with_the_default_they_give() -> None:
    checked = 0
    for section, key, documented in documented_keys():
        model = SECTIONS.get(section)
        assert model is not None, f"docs/configuration.md: no model known for the section {section}"
        assert key in model.model_fields, f"docs/configuration.md names {section} {key}, which the schema has not"
        default = model.model_fields[key].default
        expected = as_documented(documented) if documented else None
        if expected is None or not isinstance(default, (bool, int, float, str)) or isinstance(default, Path):
            continue
        actual = float(default) if isinstance(default, (int, float)) and not isinstance(default, bool) else default
        assert actual == expected, (
            f"docs/configuration.md: {section} {key} defaults to {expected!r}; the schema, {actual!r}"
        )
        checked += 1
    assert checked >= 30, f"only {checked} documented defaults were found: has the table's shape changed?"


def _is_table(annotation: object) -> bool:
    """The field is a table of its own (a model, or a list or mapping of them), documented in its own rows."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return True
    return any(_is_table(argument) for argument in get_args(annotation))


def test_every_setting_of_the_schema_is_in_the_configuration_docs() -> None:
    documented: dict[type[BaseModel], set[str]] = {}
    for section, key, _ in documented_keys():
        documented.setdefault(SECTIONS[section], set()).add(key)
    for section, model in SECTIONS.items():
        settings = {name for name, field in model.model_fields.items() if not _is_table(field.annotation)}
        missing = settings - documented.get(model, set())
        assert not missing, f"docs/configuration.md does not name {section} {', '.join(sorted(missing))}"
