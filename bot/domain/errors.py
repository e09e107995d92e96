"""Errors of kerberos-bot.

Every error the user may see derives from ``KerberosBotError``; its ``user_message`` is safe to
show in Slack (no stack trace, no raw library text that could leak DNs or host names beyond what
the operator configured). Adapters translate their library's exceptions into these at the
boundary and re-raise ``from exc`` so the log keeps the cause.

    KerberosBotError
    ├── ConfigurationError          bad or missing setting (names the variable / key)
    ├── UsageError                  the user typed something we cannot act on
    │   ├── UnknownDomainError
    │   ├── PreflightError          bot.actions: the action cannot succeed now (no server, 24-hour rule)
    │   ├── NotAllowed              services.changes.errors: not in a group allowed to request the action
    │   ├── RateLimited             services.changes.errors: too many requests or clicks in a short time
    │   └── TamperedButton          handlers.views.cards: a button value the bot did not make
    ├── DirectoryError              on-premises AD (ldap3)
    │   ├── DirectoryUnavailable    no DC of the pool answered
    │   ├── DirectoryAuthError      bind refused (wrong password, locked account)
    │   ├── DirectoryTimeout        a DC accepted the connection but did not answer in time
    │   └── DirectoryDataError      the objects exist but are not what the module creates
    ├── EntraError                  Microsoft identity platform / Graph
    │   ├── EntraAuthError          401, or no token could be acquired
    │   ├── EntraForbidden          403: the app lacks a permission
    │   ├── EntraNotFound           404: the object (a group, a user) does not exist
    │   ├── EntraThrottled          429, with Retry-After
    │   └── EntraUnavailable        5xx, network, TLS
    ├── KerberosModuleError         the Kerberos module port (emulator or the real module)
    ├── StoreUnavailable            the approval store (Redis) did not answer, or not as it must
    ├── GroupsUnavailable           adapters.slack.groups: Slack's user groups could not be read
    ├── SignInRefused               domain.verification: the approver's sign-in does not verify them
    ├── SignInAbandoned             domain.verification: the sign-in did not finish (expired, declined)
    ├── IdentityUnknown             services.verification: no Entra user is known for the Slack account
    └── RefusedAtExecution          services.changes.errors: re-validation before the module call refused it
        ├── ForgedRecord            the stored request does not carry the bot's signature
        └── LeaseLost               the worker's claim lapsed before the module call

The errors defined beside the code that raises them are named with their module; a test
(``tests/unit/test_errors.py``) checks that every subclass of ``KerberosBotError`` is in this tree.
"""

from __future__ import annotations


class KerberosBotError(Exception):
    """Root of the errors whose ``user_message`` may be shown to a Slack user."""

    def __init__(self, user_message: str, *, hint: str | None = None) -> None:
        super().__init__(user_message)
        self.user_message = user_message
        self.hint = hint

    def __str__(self) -> str:
        return self.user_message if not self.hint else f"{self.user_message} ({self.hint})"


class ConfigurationError(KerberosBotError):
    """A setting is missing or wrong; the message names the variable or key."""


class UsageError(KerberosBotError):
    """The user's command cannot be understood; the message says what is valid."""


class UnknownDomainError(UsageError):
    def __init__(self, domain: str, known: list[str]) -> None:
        known_text = ", ".join(f"`{d}`" for d in known) or "(none configured)"
        super().__init__(f"Unknown domain `{domain}`. Configured domains: {known_text}.")
        self.domain = domain
        self.known = known


class DirectoryError(KerberosBotError):
    """On-premises Active Directory could not give an answer."""


class DirectoryUnavailable(DirectoryError):
    pass


class DirectoryAuthError(DirectoryError):
    pass


class DirectoryTimeout(DirectoryError):
    pass


class DirectoryDataError(DirectoryError):
    pass


class EntraError(KerberosBotError):
    """Microsoft Entra ID (identity platform or Graph) could not give an answer."""


class EntraAuthError(EntraError):
    pass


class EntraForbidden(EntraError):
    pass


class EntraNotFound(EntraError):
    """Graph has no such resource (a group id, a user) in the tenant."""


class EntraThrottled(EntraError):
    def __init__(self, user_message: str, *, retry_after_seconds: float | None = None) -> None:
        super().__init__(user_message)
        self.retry_after_seconds = retry_after_seconds


class EntraUnavailable(EntraError):
    pass


class KerberosModuleError(KerberosBotError):
    """The Kerberos module (AzureADHybridAuthenticationManagement or its emulator) failed."""


class StoreUnavailable(KerberosBotError):
    """The approval store (Redis) could not be reached, or could not confirm a write; nothing was decided."""
