"""docker-compose.yml and the Dockerfile say what the operator's guide promises.

A Docker daemon is not needed here; tests/integration/test_docker_image.py builds and runs the image
when one is (opt-in).
"""

import os
import re
import subprocess
import time
from pathlib import Path
from typing import Any

import yaml
from kerberos_sandbox.redis_server import free_port

ROOT = Path(__file__).parents[2]


def compose() -> dict[str, Any]:
    loaded = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert isinstance(loaded, dict)
    return loaded


def dockerfile_stages() -> dict[str, list[str]]:
    """Stage name -> its instructions (continuation lines joined), in file order."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    stages: dict[str, list[str]] = {}
    current: list[str] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if match := re.match(r"FROM\s+\S+\s+AS\s+(\S+)", line, re.I):
            current = stages.setdefault(match.group(1), [])
        current.append(line)
    return stages


def test_the_deployed_image_runs_as_a_non_root_user_and_is_the_default_target() -> None:
    stages = dockerfile_stages()
    assert list(stages)[-1] == "bot", "a plain `docker build .` must give the deployable image"
    users = [line.split()[1] for line in stages["bot"] if line.upper().startswith("USER ")]
    assert users and users[-1] not in ("root", "0", "0:0")
    assert compose()["services"]["bot"]["build"]["target"] == "bot"


def test_bot_and_redis_come_up_together_with_healthchecks_and_append_only_redis() -> None:
    services = compose()["services"]
    bot, redis = services["bot"], services["redis"]
    assert "profiles" not in bot and "profiles" not in redis  # `docker compose up` starts both
    assert bot["depends_on"]["redis"]["condition"] == "service_healthy"
    assert "/healthz" in " ".join(bot["healthcheck"]["test"])
    assert redis["healthcheck"]["test"][-1].endswith("ping")
    command = " ".join(redis["command"])
    assert "--appendonly yes" in command and "--appendfsync always" in command
    assert any(volume.endswith(":/data") for volume in redis["volumes"])
    assert bot["environment"]["REDIS_URL"].startswith("redis://kerberos-bot:${REDIS_PASSWORD")
    assert "@redis:6379" in bot["environment"]["REDIS_URL"]


def test_redis_has_an_acl_user_protected_mode_and_no_published_port() -> None:
    services = compose()["services"]
    redis, bot = services["redis"], services["bot"]
    command = " ".join(redis["command"])
    assert "--protected-mode yes" in command and "user default off" in command and "--aclfile" in command
    assert "user kerberos-bot on" in command and "-@admin" in command and "~{kerberos-bot}:*" in command
    assert "--maxmemory-policy noeviction" in command
    assert "ports" not in redis
    assert redis["environment"]["REDIS_PASSWORD"].startswith("${REDIS_PASSWORD:?")
    assert bot["ports"] == ["3000:3000"]  # the Slack endpoint only: health and metrics stay inside
    assert "3001/healthz" in " ".join(bot["healthcheck"]["test"])
    assert bot["environment"]["KERBEROS_BOT_INTEGRITY_KEY"].startswith("${KERBEROS_BOT_INTEGRITY_KEY:?")


def test_the_sandbox_is_a_second_profile_on_its_own_redis_database() -> None:
    services = compose()["services"]
    sandbox = services["sandbox"]
    assert sandbox["profiles"] == ["sandbox"]
    assert sandbox["build"]["target"] == "sandbox"
    assert sandbox["stdin_open"] and sandbox["tty"]  # the console reads what the user types
    assert sandbox["environment"]["REDIS_URL"].startswith("redis://sandbox-redis:")  # a Redis of its own
    assert services["sandbox-redis"]["profiles"] == ["sandbox"]
    assert "sandbox" in dockerfile_stages()
    # Samba's provisioning needs these inside the sandbox container; the deployed bot gets none
    assert set(sandbox["cap_add"]) == {"SYS_ADMIN", "NET_ADMIN"}
    assert "cap_add" not in services["bot"] and "privileged" not in services["bot"]


def test_secrets_are_not_baked_into_the_compose_file() -> None:
    environment = compose()["services"]["bot"]["environment"]
    for name in ("SLACK_SIGNING_SECRET", "SLACK_BOT_TOKEN"):
        assert environment[name] == f"${{{name}:-}}"  # taken from the environment or .env


def test_the_redis_password_never_reaches_a_command_line(tmp_path: Path) -> None:
    """The compose service's own shell lines, run here on a private port: Redis comes up with the ACL user,
    the healthcheck answers PONG, and no process's command line holds the password."""
    redis = compose()["services"]["redis"]
    acl = tmp_path / "users.acl"
    port = free_port()
    script = redis["command"][-1].replace("$$", "$").replace("/tmp/users.acl", str(acl))
    version = subprocess.run(["redis-server", "--version"], capture_output=True, text=True).stdout
    if re.search(r"v=7\.[01]\.", version):  # this machine's Redis predates the image's: no WAITAOF, CLIENT SETINFO
        script = script.replace(" +waitaof +client|setinfo", "")
    script += f" --port {port} --dir {tmp_path} --appendfsync no --save ''"
    password = "s3cret-" + "x" * 20
    env = {**os.environ, "REDIS_PASSWORD": password}
    server = subprocess.Popen(["sh", "-c", script], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        check = redis["healthcheck"]["test"][1].replace("$$", "$").replace("redis-cli", f"redis-cli -p {port}")
        for _ in range(100):
            answer = subprocess.run(["sh", "-c", check], env=env, capture_output=True, text=True)
            if answer.stdout.strip() == "PONG":
                break
            time.sleep(0.05)
        assert answer.stdout.strip() == "PONG", answer.stdout + answer.stderr
        cmdline = Path(f"/proc/{server.pid}/cmdline").read_bytes().decode(errors="replace")
        assert "redis-server" in cmdline and password not in cmdline
        assert oct(acl.stat().st_mode & 0o777) == "0o600"
    finally:
        server.terminate()
        server.wait(10)


def test_the_deployed_image_drops_the_build_proxys_ca() -> None:
    """EXTRA_CA_CERT lets pip through a TLS-inspecting proxy at build time; the bot never trusts it at run time."""
    bot = " ".join(dockerfile_stages()["bot"])
    assert "rm -f /usr/local/share/ca-certificates/extra-ca.crt" in bot and "update-ca-certificates --fresh" in bot
