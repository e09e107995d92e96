"""What every table of the configuration shares: strict models, and secrets named by source."""

from __future__ import annotations

import os
import re
from pathlib import Path

from pydantic import BaseModel, ConfigDict, SecretStr, model_validator

from bot.domain.errors import ConfigurationError


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SecretSource(Strict):
    """Where a secret comes from: an environment variable, a file, or (sandbox only) inline."""

    env: str | None = None
    file: Path | None = None
    value: SecretStr | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> SecretSource:
        given = [n for n in ("env", "file", "value") if getattr(self, n) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of 'env', 'file' or 'value'")
        return self

    def resolve(self, where: str) -> str:
        """The secret itself; ``where`` names the key for the error message."""
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
        assert self.value is not None
        return self.value.get_secret_value()


def slack_channel_id(value: str | None) -> str | None:
    if value is not None and not re.fullmatch(r"[CG][A-Z0-9]{6,}", value):
        raise ValueError(f"'{value}' is not a Slack channel id such as C0123ABCD (the id, not the #name)")
    return value
