"""The environment (and ``.env``): Slack's secrets, Redis, where the configuration file is, logging."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.domain.errors import ConfigurationError

SLACK_API_DEFAULT = "https://slack.com/api/"


MEMORY_URL = "memory://"  # REDIS_URL for one process that keeps every approval in its memory (a trial)


class Settings(BaseSettings):
    """Environment variables (and ``.env``)."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    slack_signing_secret: SecretStr | None = None
    slack_bot_token: SecretStr | None = None
    slack_app_token: SecretStr | None = None
    slack_api_url: str = SLACK_API_DEFAULT
    redis_url: str = "redis://127.0.0.1:6379/0"
    kerberos_bot_config: Path | None = None
    log_level: str = "INFO"
    log_format: Literal["json", "text"] = "json"


def load_settings(**overrides: object) -> Settings:
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = [
            f"environment variable {'.'.join(str(p) for p in err['loc']).upper()}: {err['msg']}" for err in exc.errors()
        ]
        raise ConfigurationError("; ".join(problems)) from exc
