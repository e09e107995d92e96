"""[[domains]]: one on-premises AD domain each, how to reach its DCs, where its requests go and when its
changes may run."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from bot.config.common import SecretSource, Strict, slack_channel_id
from bot.domain.model import dns_name
from bot.domain.windows import ChangeWindows, WindowError


def base_dn_of(dns_name: str) -> str:
    return ",".join(f"DC={part}" for part in dns_name.split("."))


class WindowConfig(Strict):
    """One change window: it opens at every time ``cron`` names and stays open ``hours``."""

    cron: str = Field(
        description="minute hour day-of-month month day-of-week, in the domain's timezone, e.g. '0 22 * * mon-thu'"
    )
    hours: float = Field(gt=0, le=168, description="how long it stays open from each start")


class DomainConfig(Strict):
    """One on-premises AD domain and how to reach its DCs."""

    name: str = Field(description="DNS name of the domain, e.g. contoso.com")
    base_dn: str | None = None
    ldap_urls: list[str] = Field(min_length=1, description="ldaps://dc1.contoso.com:636, one per DC")
    bind_user: str
    bind_password: SecretSource
    ca_file: Path | None = None
    tls_validate: bool = True
    connect_timeout_seconds: float = Field(default=5.0, gt=0)
    operation_timeout_seconds: float = Field(default=10.0, gt=0)
    forest_root: str | None = Field(default=None, description="DNS name of the forest root; empty = this domain")
    channel: str | None = Field(
        default=None,
        description="the Slack channel id (C…) where the bot files this domain's scheduled requests and posts what "
        "its watch sees; none: neither",
    )
    approvals_channel: str | None = Field(
        default=None,
        description="the Slack channel id (C…) where this domain's requests are carded and approved, whatever "
        "channel they are asked in (which gets a note with the link); none: where they are asked",
    )
    rotate_every_days: int | None = Field(
        default=None,
        ge=2,
        le=3650,
        description="file a rotate request (approved as any other) when the key is this old; none: no schedule. "
        "Microsoft: the same cadence as the AD krbtgt account",
    )
    rotate_twice: bool = Field(
        default=False,
        description="scheduled rotations are double rotations: the second is filed once the 24-hour window has "
        "passed, which retires the old key",
    )
    change_windows: list[WindowConfig] = Field(
        default_factory=list,
        description="when approved changes run here ([[domains.change_windows]] cron, hours); none: at any time. "
        "Break-glass (emergency-rotate) is not held",
    )
    execution: Literal["bot", "operator"] = Field(
        default="bot",
        description="operator: every approved change here is run by an operator from [operators] groups with their "
        "own MFA sign-in, and verified by the bot; bot: as each action's [approvals.<action>] execution says",
    )
    timezone: str = Field(default="UTC", description="the time zone the change windows' cron expressions are read in")
    outside_window: Literal["wait", "refuse"] = Field(
        default="wait",
        description="a change approved outside every window: wait for the next opening (the card says when), or "
        "refuse it",
    )

    @field_validator("name")
    @classmethod
    def _lower(cls, value: str) -> str:
        value = dns_name(value)
        if not value or " " in value or "." not in value:
            raise ValueError(f"'{value}' is not a DNS domain name such as contoso.com")
        return value

    @field_validator("tls_validate")
    @classmethod
    def _validated(cls, value: bool) -> bool:
        if not value:
            raise ValueError(
                "tls_validate = false would accept any certificate, so anyone on the path could read the bind "
                "password; give the CA that signed the DCs' certificates as ca_file instead"
            )
        return value

    @field_validator("ldap_urls")
    @classmethod
    def _urls(cls, urls: list[str]) -> list[str]:
        for url in urls:
            if not url.startswith(("ldap://", "ldaps://")):
                raise ValueError(f"'{url}' must start with ldaps:// (or ldap:// for StartTLS)")
        return urls

    @field_validator("channel", "approvals_channel")
    @classmethod
    def _channel_id(cls, value: str | None) -> str | None:
        return slack_channel_id(value)

    @model_validator(mode="after")
    def _schedule_has_a_channel(self) -> DomainConfig:
        if self.rotate_every_days is not None and self.channel is None:
            raise ValueError("rotate_every_days needs a channel: the scheduled rotate request is posted there")
        return self

    @model_validator(mode="after")
    def _windows_readable(self) -> DomainConfig:
        try:
            self.windows  # noqa: B018 - parsed for its errors
        except WindowError as exc:
            raise ValueError(f"change_windows: {exc}") from exc
        return self

    @property
    def windows(self) -> ChangeWindows:
        """The change windows, parsed (the configuration was checked when it was read)."""
        pairs = [(w.cron, w.hours) for w in self.change_windows]
        return ChangeWindows.parse(pairs, self.timezone, self.outside_window)

    @property
    def effective_base_dn(self) -> str:
        return self.base_dn or base_dn_of(self.name)

    @property
    def forest_root_name(self) -> str:
        return (self.forest_root or self.name).lower()

    @property
    def configuration_dn(self) -> str:
        return f"CN=Configuration,{base_dn_of(self.forest_root_name)}"
