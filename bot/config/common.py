"""What every table of the configuration shares: strict models, and secrets named by source."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path

from pydantic import BaseModel, ConfigDict, SecretStr, model_validator

from bot.domain.errors import ConfigurationError


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


KeyVaultReader = Callable[[str, str, str | None, str], str]  # (vault URL, secret, version, where) -> the value


class SecretSource(Strict):
    """Where a secret comes from: an environment variable, a file, an Azure Key Vault secret (``key_vault`` and
    ``secret``, optionally its ``version``), or (sandbox only) inline."""

    env: str | None = None
    file: Path | None = None
    key_vault: str | None = None  # the vault's URL, https://<name>.vault.azure.net
    secret: str | None = None  # the secret's name in that vault
    version: str | None = None  # a version of it; absent: the current one
    value: SecretStr | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> SecretSource:
        given = [n for n in ("env", "file", "key_vault", "value") if getattr(self, n) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of 'env', 'file', 'key_vault' (with 'secret') or 'value'")
        if (self.key_vault is None) != (self.secret is None):
            raise ValueError("a Key Vault reference names both 'key_vault' (the vault's URL) and 'secret'")
        if self.key_vault is not None and not self.key_vault.startswith("https://"):
            raise ValueError(f"key_vault {self.key_vault!r} is not an https:// URL (https://<name>.vault.azure.net)")
        if self.version is not None and self.key_vault is None:
            raise ValueError("'version' names a version of a Key Vault secret: give 'key_vault' and 'secret' too")
        return self

    @property
    def may_change(self) -> bool:
        """The secret may be rotated at its source while the bot runs (a file, a Key Vault secret), so it is worth
        reading again; an environment variable or an inline value cannot change under a running process."""
        return self.file is not None or self.key_vault is not None

    def resolve(self, where: str, key_vault: KeyVaultReader | None = None) -> str:
        """The secret itself; ``where`` names the key for the error message; ``key_vault`` reads a Key Vault
        reference (the composition root gives its reader)."""
        if self.env is not None:
            found = os.environ.get(self.env)
            if not found:
                raise ConfigurationError(f"{where}: environment variable {self.env} is not set or empty")
            return found
        if self.file is not None:
            try:
                return self.file.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ConfigurationError(f"{where}: cannot read secret file {self.file}: {exc.strerror}") from exc
        if self.key_vault is not None:
            assert self.secret is not None  # the validator pairs them
            if key_vault is None:
                raise ConfigurationError(f"{where}: a Key Vault secret cannot be read here")
            return key_vault(self.key_vault, self.secret, self.version, where)
        assert self.value is not None
        return self.value.get_secret_value()


def slack_channel_id(value: str | None) -> str | None:
    if value is not None and not re.fullmatch(r"[CG][A-Z0-9]{6,}", value):
        raise ValueError(f"'{value}' is not a Slack channel id such as C0123ABCD (the id, not the #name)")
    return value
