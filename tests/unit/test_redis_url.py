"""REDIS_URL: a single server, TLS, or a primary behind Redis Sentinel; any other form stops the bot with
a message naming the setting and the forms it takes, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.adapters.redis.client import SentinelTarget, connect, sentinel_target
from bot.domain.errors import ConfigurationError

ROOT = Path(__file__).resolve().parents[2]


def test_a_sentinel_url_names_the_sentinels_the_primary_and_its_database() -> None:
    target = sentinel_target("redis+sentinel://bot:s3cret@s1.corp:26379,s2.corp:26380,[::1]:26381/kerberos/2")
    assert target == SentinelTarget(
        (("s1.corp", 26379), ("s2.corp", 26380), ("::1", 26381)), "kerberos", 2, "bot", "s3cret"
    )
    tls = sentinel_target("rediss+sentinel://s1:26379/kerberos?sentinel_password=p&ssl_ca_certs=/etc/ca.pem")
    assert tls.tls and tls.tls_ca == "/etc/ca.pem" and tls.sentinel_password == "p" and tls.db == 0


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("sentinel://s1:26379/kerberos", "sentinel:// is not supported"),
        ("redis+sentinel://s1:26379", "name the primary after the sentinels"),
        ("redis+sentinel://s1/kerberos", "'s1' is not host:port"),
        ("redis+sentinel://s1:26379/kerberos/zero", "name the primary after the sentinels"),
        ("127.0.0.1:6379", "is not supported"),
    ],
)
def test_a_url_of_another_form_is_a_configuration_error_naming_the_setting(url: str, says: str) -> None:
    with pytest.raises(ConfigurationError, match="REDIS_URL") as caught:
        connect(url)
    assert says in caught.value.user_message and "redis+sentinel://" in caught.value.user_message


def test_serve_stops_on_a_url_it_cannot_use_with_that_message_and_no_traceback(tmp_path: Path) -> None:
    config = tmp_path / "kerberos-bot.toml"
    config.write_text((ROOT / "tests" / "fixtures" / "minimal.toml").read_text(encoding="utf-8"), encoding="utf-8")
    env = {
        **os.environ,
        "KERBEROS_BOT_CONFIG": str(config),
        "REDIS_URL": "sentinel://s1:26379/kerberos",
        "SLACK_SIGNING_SECRET": "x" * 32,
        "SLACK_BOT_TOKEN": "xoxb-test",
    }
    done = subprocess.run(
        [sys.executable, "-m", "bot", "serve", "--port", "0"], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode != 0
    assert "REDIS_URL: sentinel:// is not supported" in done.stderr and "Traceback" not in done.stderr
