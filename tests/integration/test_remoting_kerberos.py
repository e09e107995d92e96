"""Kerberos to the management host for real: the Samba DC's KDC issues the tickets, pypsrp's transport carries them.

The fake WinRM endpoint (tests/support/winrm.py) accepts with the keys of a service account whose
SPN is HTTP/mgmt-<tag>.contoso.test (tests/support/kdc.py); it listens on 127.0.0.1, so the runner
connects by IP and names the SPN with ``spn_hostname``, as production does for a host reached by
IP or alias. KRB5_CONFIG and KRB5CCNAME are process-global: each test sets them with monkeypatch
(MIT reads them at every library context, so a test's values hold for its calls and are undone
after), and the acceptor's KRB5_KTNAME is set only while the endpoint runs.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import socket
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import trustme

from bot.adapters.kerberos_module.remoting.module import RemotingKerberosModule
from bot.bootstrap.module import build_remoting
from bot.config import RemotingConfig
from bot.domain.errors import KerberosModuleError
from bot.entrypoints.check import check_remoting
from tests.integration.test_remoting_transport import CREDENTIALS, SAMPLE, answering
from tests.support.kdc import KerberosPrincipals, kerberos_principals, kinit_keytab, krb5_conf_text
from tests.support.samba import SambaDC
from tests.support.winrm import Answer, FakeWinRM, fake_winrm

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.samba


@pytest.fixture(scope="module")
async def principals(
    contoso_dc: SambaDC, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[KerberosPrincipals]:
    created = await kerberos_principals(contoso_dc, tmp_path_factory.mktemp("kerberos"))
    yield created
    await created.remove()


@pytest.fixture
def realm(principals: KerberosPrincipals, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> KerberosPrincipals:
    """The realm's krb5.conf, and an empty ticket cache, so the machine's own never leaks in."""
    monkeypatch.setenv("KRB5_CONFIG", str(principals.krb5_conf))
    monkeypatch.setenv("KRB5CCNAME", f"FILE:{tmp_path / 'no-ccache'}")
    monkeypatch.setenv("KRB5_CLIENT_KTNAME", f"FILE:{tmp_path / 'no-client-keytab'}")
    return principals


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def ca_file(ca: trustme.CA, tmp_path: Path) -> Path:
    path = tmp_path / "winrm-ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return path


@pytest.fixture
def https_host(realm: KerberosPrincipals, ca: trustme.CA) -> Iterator[tuple[FakeWinRM, int]]:
    with fake_winrm(realm.principal, tls=ca, kerberos_keytab=realm.service_keytab) as (state, port):
        state.answer = lambda _: Answer(output=(SAMPLE,))
        yield state, port


def kerberos_config(realm: KerberosPrincipals, port: int, ca_file: Path | None, **changes: object) -> RemotingConfig:
    values: dict[str, object] = {
        "host": "127.0.0.1",
        "port": port,
        "ssl": ca_file is not None,
        "auth": "kerberos",
        "username": realm.principal,
        "password": {"value": realm.password},
        "spn_hostname": realm.spn_host,
        "krb5_conf": str(realm.krb5_conf),
        "domain_credential": {"user": CREDENTIALS.domain_user, "password": {"value": CREDENTIALS.domain_password}},
        "cloud_credential": {"user": CREDENTIALS.cloud_user, "password": {"value": CREDENTIALS.cloud_password}},
        "min_module_version": "2.0.0",
        "connect_timeout_seconds": 5,
    }
    if ca_file is not None:
        values["cert_validation"] = str(ca_file)
    values.update(changes)
    return RemotingConfig.model_validate({k: v for k, v in values.items() if v is not None})


async def refused(module: RemotingKerberosModule) -> str:
    with pytest.raises(KerberosModuleError) as caught:
        await module.get_server("contoso.com")
    return caught.value.user_message


async def test_kerberos_with_a_password_over_https(
    realm: KerberosPrincipals, https_host: tuple[FakeWinRM, int], ca_file: Path
) -> None:
    state, port = https_host
    report = await build_remoting(kerberos_config(realm, port, ca_file)).get_server("contoso.com")

    assert report.cloud_id == 25614
    assert state.authenticated_as == [realm.principal]  # the KDC's ticket, channel-bound to the TLS certificate
    assert state.pipelines[0].parameters["CloudCredential"][1] == CREDENTIALS.cloud_password

    state.answer = answering("2.4.0")  # type: ignore[assignment]
    reached, on_host = await check_remoting(kerberos_config(realm, port, ca_file))
    assert reached.ok and on_host.ok
    assert f"as {realm.principal} (kerberos via password, SPN {realm.spn}, HTTPS on)" in reached.detail


async def test_kerberos_with_a_client_keytab(
    realm: KerberosPrincipals, https_host: tuple[FakeWinRM, int], ca_file: Path
) -> None:
    state, port = https_host
    config = kerberos_config(realm, port, ca_file, auth="kerberos", password=None, keytab=str(realm.client_keytab))
    await build_remoting(config).get_server("contoso.com")
    assert state.authenticated_as == [realm.principal]


async def test_kerberos_with_the_ambient_ticket_cache(
    realm: KerberosPrincipals,
    https_host: tuple[FakeWinRM, int],
    ca_file: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    state, port = https_host
    ccache = tmp_path / "ccache"
    await kinit_keytab(realm, ccache)  # what an operator's kinit -kt (or k5start) leaves
    monkeypatch.setenv("KRB5CCNAME", f"FILE:{ccache}")
    config = kerberos_config(realm, port, ca_file, username=None, password=None)
    await build_remoting(config).get_server("contoso.com")
    assert state.authenticated_as == [realm.principal]

    state.answer = answering("2.4.0")  # type: ignore[assignment]
    reached, _ = await check_remoting(config)
    assert reached.ok and "kerberos via ticket cache" in reached.detail


async def test_kerberos_with_the_client_keytab_of_the_environment(
    realm: KerberosPrincipals, https_host: tuple[FakeWinRM, int], ca_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state, port = https_host
    monkeypatch.setenv("KRB5_CLIENT_KTNAME", f"FILE:{realm.client_keytab}")  # MIT gets the TGT from it itself
    await build_remoting(kerberos_config(realm, port, ca_file, username=None, password=None)).get_server("x.com")
    assert state.authenticated_as == [realm.principal]


async def test_kerberos_wrong_password(
    realm: KerberosPrincipals, https_host: tuple[FakeWinRM, int], ca_file: Path
) -> None:
    state, port = https_host
    config = kerberos_config(realm, port, ca_file, password={"value": "Not-the-Passw0rd"})
    message = await refused(build_remoting(config))
    assert message.startswith("Kerberos to the management host 127.0.0.1:")
    assert f"the KDC refused the password of {realm.principal} (preauthentication failed)" in message
    assert state.actions == [] and state.authenticated_as == []

    reached, _ = await check_remoting(config)
    assert not reached.ok and "preauthentication failed" in reached.detail and "Not-the-Passw0rd" not in reached.line()


async def test_kerberos_unknown_spn_when_connecting_by_ip(
    realm: KerberosPrincipals, https_host: tuple[FakeWinRM, int], ca_file: Path
) -> None:
    _, port = https_host
    message = await refused(build_remoting(kerberos_config(realm, port, ca_file, spn_hostname=None)))
    assert "the KDC knows no service principal HTTP/127.0.0.1" in message
    assert "set spn_hostname" in message


async def test_kerberos_ticket_the_host_cannot_read(realm: KerberosPrincipals, ca: trustme.CA, ca_file: Path) -> None:
    """The SPN belongs to another account than the one the host decrypts with: the host answers 401."""
    with fake_winrm(realm.principal, tls=ca, kerberos_keytab=realm.client_keytab) as (state, port):
        message = await refused(build_remoting(kerberos_config(realm, port, ca_file)))
    assert f"refused the Kerberos ticket for {realm.spn}" in message and "setspn -Q" in message
    assert state.authenticated_as == []


def silent_kdc() -> tuple[socket.socket, int]:
    """A UDP port that swallows every request (a firewall dropping 88); TCP on it is closed."""
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    return udp, int(udp.getsockname()[1])


async def test_kerberos_kdc_that_does_not_answer(
    realm: KerberosPrincipals,
    https_host: tuple[FakeWinRM, int],
    ca_file: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    state, port = https_host
    udp, kdc_port = silent_kdc()
    dead = tmp_path / "krb5-dead-kdc.conf"
    dead.write_text(krb5_conf_text(realm.realm, f"127.0.0.1:{kdc_port}"))
    monkeypatch.setenv("KRB5_CONFIG", str(dead))
    try:
        config = kerberos_config(realm, port, ca_file, krb5_conf=str(dead))
        message = await refused(build_remoting(config))  # MIT gives up after its retries (about 18 s)
    finally:
        udp.close()
    assert f"no KDC of {realm.realm} answered" in message and "port 88" in message
    assert state.actions == []


async def test_kerberos_without_any_credentials(
    realm: KerberosPrincipals, https_host: tuple[FakeWinRM, int], ca_file: Path
) -> None:
    _, port = https_host
    config = kerberos_config(realm, port, ca_file, username=None, password=None)
    message = await refused(build_remoting(config))
    assert "no Kerberos credentials for the principal of the Kerberos ticket cache" in message
    assert "kinit -kt" in message

    reached, on_host = await check_remoting(config)
    assert not reached.ok and "kinit -kt" in reached.detail and not on_host.ok


async def test_kerberos_over_http_seals_every_message(realm: KerberosPrincipals) -> None:
    """ssl = false is allowed only with Kerberos: WinRM's message encryption with the Kerberos session key."""
    with fake_winrm(realm.principal, kerberos_keytab=realm.service_keytab) as (state, port):
        state.answer = lambda _: Answer(output=(SAMPLE,))
        config = kerberos_config(realm, port, None)
        assert not config.ssl
        report = await build_remoting(config).get_server("contoso.com")
        assert report.cloud_id == 25614
        assert state.authenticated_as == [realm.principal]
        assert state.pipelines[0].parameters["DomainCredential"][1] == CREDENTIALS.domain_password

    sealed = [body for body in state.wire if body]
    assert state.encrypted == len(sealed) == len(state.actions) > 0  # every WSMan message was sealed
    for body in sealed:
        assert b"Envelope" not in body and CREDENTIALS.cloud_user.encode() not in body


async def probe_in_faketime(config: dict[str, object], krb5_conf: Path, offset: str) -> dict[str, object]:
    """tests/support/remoting_probe.py under libfaketime: the bot's clock is off by ``offset``, the KDC's is not."""
    proc = await asyncio.create_subprocess_exec(
        "faketime",
        "-f",
        offset,
        sys.executable,
        "-m",
        "tests.support.remoting_probe",
        json.dumps(config),
        cwd=REPO,
        env={**os.environ, "KRB5_CONFIG": str(krb5_conf)},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode(errors="replace")
    result: dict[str, object] = json.loads(out.decode().strip().splitlines()[-1])
    return result


@pytest.mark.skipif(shutil.which("faketime") is None, reason="needs faketime (scripts/install-system-packages.sh)")
async def test_kerberos_clock_skew(
    realm: KerberosPrincipals, https_host: tuple[FakeWinRM, int], ca_file: Path, tmp_path: Path
) -> None:
    state, port = https_host
    config = kerberos_config(realm, port, ca_file).model_dump(mode="json", exclude_none=True)
    config["password"] = {"value": realm.password}  # model_dump hides the secret
    for credential in ("domain_credential", "cloud_credential"):
        config[credential] = {"user": config[credential]["user"], "password": {"value": "x"}}

    # MIT's default (kdc_timesync = 1) takes the KDC's time when it complains, so a skewed bot still works
    synced = await probe_in_faketime(config, realm.krb5_conf, "+10m")
    assert synced == {"ok": True} and state.authenticated_as == [realm.principal]

    strict = tmp_path / "krb5-no-timesync.conf"
    strict.write_text(realm.krb5_conf.read_text().replace("[libdefaults]\n", "[libdefaults]\n    kdc_timesync = 0\n"))
    config["krb5_conf"] = str(strict)
    skewed = await probe_in_faketime(config, strict, "+10m")
    assert skewed["ok"] is False
    assert "the clocks of the bot and the domain controller differ by more than 5 minutes" in str(skewed["message"])


async def test_no_kerberos_password_in_any_log_record_at_debug(
    realm: KerberosPrincipals, https_host: tuple[FakeWinRM, int], ca_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _, port = https_host
    caplog.set_level(logging.DEBUG)
    await build_remoting(kerberos_config(realm, port, ca_file)).get_server("contoso.com")
    await refused(build_remoting(kerberos_config(realm, port, ca_file, password={"value": "Wrong-Krb-pw-1"})))
    assert caplog.records
    logged = "\n".join(f"{r.name} {r.getMessage()} {r.exc_text or ''}" for r in caplog.records)
    for secret in (realm.password, "Wrong-Krb-pw-1", CREDENTIALS.domain_password, CREDENTIALS.cloud_password):
        assert secret not in logged
