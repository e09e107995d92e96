"""The app's client secret rotated at its source (a file here; Azure Key Vault alike) is read again when Entra
refuses the old one, and used without a restart; a source not yet rotated is reported as the refusal it is.
Against the Entra stand-in's real token endpoint."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest
from kerberos_sandbox.entra_standin import EntraStandIn

from bot.adapters.entra.graph import GraphEntraDirectory
from bot.bootstrap.adapters import entra_app
from bot.config import EntraConfig
from bot.domain.errors import EntraAuthError

pytest_plugins = ["tests.support.entra"]


def config(standin: EntraStandIn, secret_file: Path) -> EntraConfig:
    return EntraConfig.model_validate(
        {
            "tenant_id": standin.tenant_id,
            "client_id": standin.client_id,
            "client_secret": {"file": str(secret_file)},
            "authority_host": standin.url,
            "graph_url": standin.url,
            "ca_file": str(standin.ca_file),
        }
    )


async def test_a_client_secret_rotated_in_its_file_is_used_without_a_restart(
    entra_standin: EntraStandIn, tmp_path: Path
) -> None:
    secret_file = tmp_path / "client-secret"
    secret_file.write_text(entra_standin.client_secret)
    graph = GraphEntraDirectory(entra_app(config(entra_standin, secret_file)), graph_url=entra_standin.url)
    old = entra_standin.state.client_secret
    try:
        assert (await graph.tenant()).id == entra_standin.tenant_id
        # the app's secret rotated in Entra; the bot's token is gone (expired, revoked): the old secret is refused
        entra_standin.state.client_secret = secrets.token_urlsafe(30)
        graph.tokens.invalidate()
        with pytest.raises(EntraAuthError, match="AADSTS7000215"):
            await graph.kerberos_domain_events("contoso.test")
        # ... until the new one is where the configuration points: then the next sign-in takes it
        secret_file.write_text(entra_standin.state.client_secret)
        assert await graph.kerberos_domain_events("contoso.test") == []
        assert graph.token_requests == 2
    finally:
        entra_standin.state.client_secret = old
        await graph.close()
