"""Secrets the configuration names as Azure Key Vault references, read at start-up with Azure's own SDK
(azure-keyvault-secrets) and a managed identity first (azure-identity's ManagedIdentityCredential; where
the host has none, the usual credential chain, DefaultAzureCredential). A secret that is missing, or a
read the vault refuses, is a configuration error naming the reference and what to fix."""

from __future__ import annotations

import logging
from typing import Any

from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceNotFoundError,
    ServiceRequestError,
)
from azure.identity import ChainedTokenCredential, DefaultAzureCredential, ManagedIdentityCredential
from azure.keyvault.secrets import SecretClient

from bot.domain.errors import ConfigurationError

log = logging.getLogger(__name__)


class KeyVaultSecrets:
    """One credential and one client per vault, for every reference the configuration holds."""

    def __init__(self, credential: Any = None, *, verify_challenge_resource: bool = True) -> None:
        self._credential = credential
        # the SDK checks that the vault's challenge names a resource its domain belongs to (*.vault.azure.net):
        # always on for a real vault; a stand-in on a loopback address cannot have such a domain
        self._verify_challenge_resource = verify_challenge_resource
        self._clients: dict[str, SecretClient] = {}

    def _client(self, vault: str) -> SecretClient:
        if self._credential is None:
            # a managed identity first (AKS workload identity, Container Apps, a VM); the usual chain otherwise
            self._credential = ChainedTokenCredential(
                ManagedIdentityCredential(), DefaultAzureCredential(exclude_managed_identity_credential=True)
            )
        if vault not in self._clients:
            self._clients[vault] = SecretClient(
                vault_url=vault, credential=self._credential, verify_challenge_resource=self._verify_challenge_resource
            )
        return self._clients[vault]

    def read(self, vault: str, name: str, version: str | None, where: str) -> str:
        reference = f"{where}: Key Vault {vault}, secret {name!r}" + (f" version {version}" if version else "")
        try:
            found = self._client(vault).get_secret(name, version)
        except ResourceNotFoundError as exc:
            raise ConfigurationError(f"{reference}: there is no such secret in the vault") from exc
        except ClientAuthenticationError as exc:
            raise ConfigurationError(
                f"{reference}: no identity could sign in to read it (a managed identity, or the credential chain's "
                f"environment); {str(exc).splitlines()[0][:200]}"
            ) from exc
        except HttpResponseError as exc:
            if exc.status_code == 403:
                raise ConfigurationError(
                    f"{reference}: the vault refused the read: give the bot's identity 'Key Vault Secrets User' on it"
                ) from exc
            raise ConfigurationError(f"{reference}: the vault answered {exc.status_code}") from exc
        except ServiceRequestError as exc:
            raise ConfigurationError(f"{reference}: the vault could not be reached ({type(exc).__name__})") from exc
        if found.value is None:
            raise ConfigurationError(f"{reference}: the secret has no value")
        log.info("read %s (version %s)", reference, found.properties.version)
        return str(found.value)

    def close(self) -> None:
        for client in self._clients.values():
            client.close()
