from pathlib import Path

import pytest

from bot.entrypoints.cli import main


def test_help_lists_the_commands(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    for word in ("serve", "socket", "demo", "KERBEROS_BOT_CONFIG", "SLACK_SIGNING_SECRET"):
        assert word in out


def test_serve_without_signing_secret_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir("/")  # no .env here
    for name in ("SLACK_SIGNING_SECRET", "SLACK_BOT_TOKEN", "KERBEROS_BOT_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    assert main(["serve", "--port", "0"]) == 2
    assert "environment variable SLACK_SIGNING_SECRET is not set" in capsys.readouterr().err


def test_socket_without_app_token_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir("/")
    monkeypatch.delenv("SLACK_APP_TOKEN", raising=False)
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-x")
    assert main(["socket"]) == 2
    assert "SLACK_APP_TOKEN is not set" in capsys.readouterr().err


def test_serve_with_missing_config_file_names_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: object
) -> None:
    monkeypatch.chdir("/")
    monkeypatch.setenv("SLACK_SIGNING_SECRET", "s")
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-x")
    monkeypatch.setenv("KERBEROS_BOT_CONFIG", "/nonexistent/kerberos-bot.toml")
    assert main(["serve", "--port", "0"]) == 2
    assert "/nonexistent/kerberos-bot.toml does not exist" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("given", "reason"),
    [
        ("127.0.0.5", "give two or three different addresses"),
        ("127.0.0.5,127.0.0.5", "give two or three different addresses"),
        ("127.0.0.5,127.0.0.6,127.0.0.7,127.0.0.8", "give two or three different addresses"),
        ("127.0.0.5,dc1", "'dc1' is not an IP address"),
        ("127.0.0.5,10.0.0.1", "10.0.0.1 is not an IPv4 loopback address"),
        ("127.0.0.5,::1", "::1 is not an IPv4 loopback address"),
    ],
)
def test_demo_refuses_bad_dc_addresses_before_starting_anything(
    given: str, reason: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir("/")
    assert main(["demo", "--no-console", "--dc-addresses", given]) == 2
    err = capsys.readouterr().err
    assert "--dc-addresses" in err and reason in err


def test_importing_the_cli_leaves_prometheus_for_serve_to_set_up() -> None:
    # serve points prometheus_client at a directory shared with its workers before first importing it
    import subprocess
    import sys

    code = "import sys, bot.entrypoints.cli; sys.exit('prometheus_client' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_serve_refuses_a_negative_number_of_command_workers(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.chdir("/")
    config = tmp_path / "kerberos-bot.toml"
    config.write_text("")
    monkeypatch.setenv("SLACK_SIGNING_SECRET", "s")
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-x")
    monkeypatch.setenv("KERBEROS_BOT_CONFIG", str(config))
    assert main(["serve", "--port", "0", "--command-workers", "-1"]) == 2
    assert "--command-workers: give 0 or more" in capsys.readouterr().err


def test_worker_without_bot_token_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir("/")
    monkeypatch.delenv("SLACK_BOT_TOKEN", raising=False)
    assert main(["worker"]) == 2
    assert "SLACK_BOT_TOKEN is not set" in capsys.readouterr().err
