"""Configuration: the environment (``settings``) and the file it points at (``schema``: the whole file and
its cross-table rules; its tables in ``domains``, ``connections``, ``runtime``, ``approvals`` and, for the
management host, ``remoting``).

Only the composition root (``bot.bootstrap``) and the entry points read it (an import-linter
contract in pyproject.toml). A mistake is a ``ConfigurationError`` that names the variable or key and
what is wrong with it.
"""

from __future__ import annotations

from bot.config.approvals import (
    ACTION_KEYS,
    DEFAULT_APPROVALS,
    VERIFIED_BY_DEFAULT,
    ActionPolicyConfig,
    ApprovalsConfig,
    VerificationConfig,
)
from bot.config.common import SecretSource, Strict
from bot.config.connections import (
    ClientCertificate,
    EmulatorConfig,
    EmulatorDomain,
    EntraConfig,
    KerberosModuleConfig,
)
from bot.config.domains import DomainConfig, base_dn_of
from bot.config.remoting import ModuleCredential, RemotingConfig
from bot.config.runtime import ChangesConfig, LifecycleConfig, PolicyConfig
from bot.config.schema import BotConfig, load_bot_config
from bot.config.settings import SLACK_API_DEFAULT, Settings, load_settings

__all__ = [
    "ACTION_KEYS",
    "DEFAULT_APPROVALS",
    "SLACK_API_DEFAULT",
    "VERIFIED_BY_DEFAULT",
    "ActionPolicyConfig",
    "ApprovalsConfig",
    "BotConfig",
    "ChangesConfig",
    "ClientCertificate",
    "DomainConfig",
    "EmulatorConfig",
    "EmulatorDomain",
    "EntraConfig",
    "KerberosModuleConfig",
    "LifecycleConfig",
    "ModuleCredential",
    "PolicyConfig",
    "RemotingConfig",
    "SecretSource",
    "Settings",
    "Strict",
    "VerificationConfig",
    "base_dn_of",
    "load_bot_config",
    "load_settings",
]
