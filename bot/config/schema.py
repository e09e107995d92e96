"""The configuration file (TOML) as a whole: its tables (domains, connections, runtime, approvals), the
rules that span them, and reading it. Errors name the file and the key (``ConfigurationError``)."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, Field, ValidationError, model_validator

from bot.config.approvals import ACTION_KEYS, ApprovalsConfig
from bot.config.common import SecretSource, Strict
from bot.config.connections import AuditConfig, EntraConfig, KerberosModuleConfig, RedisConfig
from bot.config.domains import DomainConfig
from bot.config.runtime import ChangesConfig, LifecycleConfig, OperatorsConfig, PolicyConfig
from bot.domain.approvals import ACTION_KINDS
from bot.domain.errors import ConfigurationError
from bot.domain.model import dns_name


def _secret_sources(node: object, where: str) -> list[tuple[str, SecretSource]]:
    """Every secret reference in a configuration, with the dotted key it sits at."""
    if isinstance(node, SecretSource):
        return [(where, node)]
    found: list[tuple[str, SecretSource]] = []
    if isinstance(node, BaseModel):
        for name in type(node).model_fields:
            found += _secret_sources(getattr(node, name), f"{where}.{name}".lstrip("."))
    elif isinstance(node, dict):
        for key, value in node.items():
            found += _secret_sources(value, f"{where}.{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _secret_sources(value, f"{where}.{index}")
    return found


class BotConfig(Strict):
    """The file named by KERBEROS_BOT_CONFIG (TOML)."""

    domains: Annotated[list[DomainConfig], Field(min_length=1)]
    entra: EntraConfig
    policy: PolicyConfig = PolicyConfig()
    approvals: ApprovalsConfig = Field(default_factory=ApprovalsConfig)
    kerberos_module: KerberosModuleConfig
    changes: ChangesConfig = Field(default_factory=ChangesConfig)
    operators: OperatorsConfig = Field(default_factory=OperatorsConfig)
    lifecycle: LifecycleConfig = Field(default_factory=LifecycleConfig)
    audit: AuditConfig = Field(default_factory=AuditConfig)
    redis: RedisConfig = Field(default_factory=RedisConfig)
    sandbox: bool = Field(
        default=False, description="this configuration drives the sandbox: only then are inline secrets accepted"
    )

    @model_validator(mode="after")
    def _no_inline_secrets(self) -> BotConfig:
        if self.sandbox:
            return self
        inline = [where for where, source in _secret_sources(self, "") if source.value is not None]
        if inline:
            raise ValueError(
                f"{', '.join(inline)}: an inline secret ({{ value = ... }}) is for the sandbox only; name an "
                "environment variable ({ env = ... }) or a file ({ file = ... }) instead"
            )
        return self

    @model_validator(mode="after")
    def _change_timeout_covers_the_module(self) -> BotConfig:
        remoting = self.kerberos_module.remoting
        if remoting is not None and remoting.change_timeout_seconds >= self.changes.change_timeout_minutes * 60:
            raise ValueError(
                "changes.change_timeout_minutes must be longer than kerberos_module.remoting.change_timeout_seconds "
                "(a change makes the module call and reads before and after it)"
            )
        return self

    @model_validator(mode="after")
    def _unique_domains(self) -> BotConfig:
        names = [d.name for d in self.domains]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"domain(s) declared twice: {', '.join(dupes)}")
        known = set(names)
        for d in self.domains:
            if d.forest_root and d.forest_root.lower() not in known:
                raise ValueError(f"domain {d.name}: forest_root '{d.forest_root}' is not a configured domain")
        return self

    @model_validator(mode="after")
    def _operators_configured(self) -> BotConfig:
        by_operator = [f"[[domains]] {d.name}" for d in self.domains if d.execution == "operator"] + [
            f"[approvals.{kind.config_key}]"
            for kind in ACTION_KINDS.values()
            if self.approvals.policy(kind.config_key).execution == "operator"
        ]
        if not by_operator:
            return self
        if not self.operators.groups:
            raise ValueError(
                f'{", ".join(by_operator)} execution = "operator": name who may run the changes in [operators] groups'
            )
        if self.approvals.verification is None:
            raise ValueError(
                f'{", ".join(by_operator)} execution = "operator": the bot verifies an operator\'s change by their '
                "Entra account, mapped from Slack as approvers' are: add an [approvals.verification] table"
            )
        return self

    @model_validator(mode="after")
    def _freeze_sign_in_configured(self) -> BotConfig:
        verification = self.approvals.verification
        if self.changes.freeze_verified and (verification is None or verification.method != "auth_code"):
            raise ValueError(
                "[changes] freeze_verified needs the approvers' browser sign-in: an [approvals.verification] table "
                'with method = "auth_code"'
            )
        return self

    @model_validator(mode="after")
    def _verification_configured(self) -> BotConfig:
        approvals = self.approvals
        # break-glass is opt-in: it is off until its approver group is configured, so only then does it need
        # the verification table (a configuration written before it existed keeps loading)
        opted_out = {
            kind.config_key
            for kind in ACTION_KINDS.values()
            if kind.own_approvers and not approvals.policy(kind.config_key).approver_groups
        }
        needing = [key for key in ACTION_KEYS if approvals.verified(key) and key not in opted_out]
        if needing and approvals.verification is None:
            raise ValueError(
                f"verified approvals are on for {', '.join(needing)} (on by default for rotate_force, remove_tdo, "
                "setup and remove_all) but there is no [approvals.verification] table: add one with client_id "
                "(the approvers' app registration), approver_group_id (an Entra group) and public_url, or set "
                "verified_approval = false for those actions"
            )
        return self

    def domain(self, name: str) -> DomainConfig | None:
        wanted = dns_name(name)
        return next((d for d in self.domains if d.name == wanted), None)


def _explain(exc: ValidationError, prefix: str) -> str:
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
        lines.append(f"{prefix}{loc}: {err['msg']}")
    return "; ".join(lines)


def load_bot_config(path: Path) -> BotConfig:
    """Read and validate the domains file; errors name the file and the key."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigurationError(f"KERBEROS_BOT_CONFIG: file {path} does not exist") from exc
    except OSError as exc:
        raise ConfigurationError(f"KERBEROS_BOT_CONFIG: cannot read {path}: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"KERBEROS_BOT_CONFIG: {path} is not valid TOML: {exc}") from exc
    try:
        return BotConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigurationError(f"KERBEROS_BOT_CONFIG ({path}): " + _explain(exc, "")) from exc
