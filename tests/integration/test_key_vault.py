"""Secrets the configuration names as Azure Key Vault references: read at start-up with Azure's SDK and the
host's managed identity (App Service's endpoint, played by the Entra stand-in), from a local HTTPS stand-in
of Key Vault's secrets API that challenges as the real one does; a missing secret or a refused read stops
the start with a message naming the reference. (The SDK's check that the challenge's resource is the vault's
own domain, *.vault.azure.net, is turned off here only: a loopback stand-in cannot have such a domain.)"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from kerberos_sandbox.entra_standin import EntraStandIn
from kerberos_sandbox.key_vault_standin import KeyVaultStandIn

from bot.adapters.azure.key_vault import KeyVaultSecrets
from bot.config import load_bot_config
from bot.domain.errors import ConfigurationError

MINIMAL = Path(__file__).resolve().parents[1] / "fixtures" / "minimal.toml"
KEY = "k" * 40


@pytest.fixture
async def vault(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[tuple[KeyVaultStandIn, EntraStandIn]]:
    async with EntraStandIn() as entra, KeyVaultStandIn(f"{entra.url}/{entra.tenant_id}") as key_vault:
        monkeypatch.setenv("IDENTITY_ENDPOINT", f"{entra.url}/msi/token")  # the host's managed identity
        monkeypatch.setenv("IDENTITY_HEADER", entra.state.managed_identity_header)
        bundle = tmp_path / "cas.pem"  # both stand-ins' private CAs, for requests (which the SDK uses)
        bundle.write_text(entra.ca_file.read_text() + key_vault.ca_file.read_text())
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(bundle))
        yield key_vault, entra


def config_naming(tmp_path: Path, vault_url: str, secret: str) -> Path:
    text = MINIMAL.read_text(encoding="utf-8").replace(
        'integrity_key = { value = "kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk" }',
        f'integrity_key = {{ key_vault = "{vault_url}", secret = "{secret}" }}',
    )
    (path := tmp_path / "kerberos-bot.toml").write_text(text, encoding="utf-8")
    return path


async def test_a_secret_named_in_key_vault_is_read_with_the_managed_identity(
    vault: tuple[KeyVaultStandIn, EntraStandIn], tmp_path: Path
) -> None:
    key_vault, entra = vault
    key_vault.put("integrity-key", "old" * 20)
    key_vault.put("integrity-key", KEY)  # the current version is read
    config = load_bot_config(config_naming(tmp_path, key_vault.url, "integrity-key"))
    reader = KeyVaultSecrets(verify_challenge_resource=False)
    source = config.changes.integrity_key
    assert source is not None
    # the SDK is synchronous: off the stand-ins' event loop
    assert await asyncio.to_thread(source.resolve, "changes.integrity_key", reader.read) == KEY
    assert key_vault.reads == [(entra.state.managed_identity_object_id, "integrity-key")]
    first = key_vault.secrets["integrity-key"][0][0]
    value = await asyncio.to_thread(reader.read, key_vault.url, "integrity-key", first, "w")
    assert value == "old" * 20  # a version named is that version
    reader.close()


async def test_a_missing_secret_or_a_refused_read_is_a_start_up_error_naming_the_reference(
    vault: tuple[KeyVaultStandIn, EntraStandIn],
) -> None:
    key_vault, entra = vault
    reader = KeyVaultSecrets(verify_challenge_resource=False)
    missing = r"changes.integrity_key: Key Vault .*'no-such-secret'.*no such secret"
    with pytest.raises(ConfigurationError, match=missing):
        await asyncio.to_thread(reader.read, key_vault.url, "no-such-secret", None, "changes.integrity_key")
    key_vault.put("integrity-key", KEY)
    key_vault.denied.add(entra.state.managed_identity_object_id)
    with pytest.raises(ConfigurationError, match="refused the read: give the bot's identity 'Key Vault Secrets User'"):
        await asyncio.to_thread(reader.read, key_vault.url, "integrity-key", None, "changes.integrity_key")
    reader.close()


def test_a_key_vault_reference_names_its_vault_and_secret(tmp_path: Path) -> None:
    path = config_naming(tmp_path, "http://vault.example", "x")
    with pytest.raises(ConfigurationError, match="is not an https:// URL"):
        load_bot_config(path)
