"""Fixtures for the Entra adapters: one HTTPS stand-in per session, reset before every test.

Register them in a conftest (or a test module) with::

    pytest_plugins = ["tests.support.entra"]

Fixtures:
    entra_server   (session)  the running ``EntraStandIn`` (loopback, real TLS, its own CA)
    entra_standin  (function) the same stand-in, with data, faults and counters reset
    entra_graph    (function) a ``GraphEntraDirectory`` signed in with the client secret; closed after
    entra_cloud_store (function) a ``CloudKerberosDomainStore`` on the stand-in; closed after

Helpers: ``entra_app(standin, **overrides)`` builds the ``EntraApp`` for the stand-in;
``client_certificate(standin)`` registers a fresh RSA certificate on the app.

PYTEST_DONT_REWRITE: test modules import the helpers before ``pytest_plugins`` loads this module
as a plugin, and it holds no asserts to rewrite; the marker keeps pytest from warning about it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
import trustme
from kerberos_sandbox.entra_standin import EntraStandIn

from bot.adapters.entra.app import EntraApp
from bot.adapters.entra.graph import GraphEntraDirectory
from bot.adapters.kerberos_module.emulator.cloud_store import CloudKerberosDomainStore

TIMEOUT = 1.0  # short, so the timeout tests stay quick; the stand-in answers in milliseconds


def entra_app(standin: EntraStandIn, **overrides: Any) -> EntraApp:
    """The app registration of the stand-in, signing in with its client secret unless overridden."""
    values: dict[str, Any] = {
        "tenant_id": standin.tenant_id,
        "client_id": standin.client_id,
        "client_secret": standin.client_secret,
        "authority_host": standin.url,
        "ca_file": standin.ca_file,
        "timeout": TIMEOUT,
    }
    values.update(overrides)
    return EntraApp(**values)


@dataclass(frozen=True)
class ClientCertificate:
    private_key_pem: str
    public_certificate_pem: str
    thumbprint: str  # SHA-1, hex, as the portal shows it


def client_certificate(standin: EntraStandIn, *, register: bool = True) -> ClientCertificate:
    """A new RSA certificate (msal signs assertions RS256/PS256), registered on the app unless told."""
    cert = trustme.CA(key_type=trustme.KeyType.RSA).issue_cert(
        "kerberos-bot.contoso.test", key_type=trustme.KeyType.RSA
    )
    public = cert.cert_chain_pems[0].bytes()
    if register:
        thumbprint = standin.register_certificate(public)
    else:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes

        thumbprint = x509.load_pem_x509_certificate(public).fingerprint(hashes.SHA1()).hex().upper()
    return ClientCertificate(cert.private_key_pem.bytes().decode(), public.decode(), thumbprint)


@pytest.fixture(scope="session")
async def entra_server() -> AsyncIterator[EntraStandIn]:
    async with EntraStandIn() as standin:
        yield standin


@pytest.fixture
async def entra_standin(entra_server: EntraStandIn) -> AsyncIterator[EntraStandIn]:
    entra_server.reset()
    yield entra_server
    entra_server.reset()  # no fault may outlive its test


@pytest.fixture
async def entra_graph(entra_standin: EntraStandIn) -> AsyncIterator[GraphEntraDirectory]:
    directory = GraphEntraDirectory(entra_app(entra_standin), graph_url=entra_standin.url)
    yield directory
    await directory.close()


@pytest.fixture
async def entra_cloud_store(entra_standin: EntraStandIn) -> AsyncIterator[CloudKerberosDomainStore]:
    store = CloudKerberosDomainStore(entra_app(entra_standin), base_url=entra_standin.url)
    yield store
    await store.close()
