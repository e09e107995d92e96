"""The images docker-compose.yml builds, built and run for real (opt-in: minutes, and a Docker daemon).

    KERBEROS_BOT_DOCKER_TESTS=1 .venv/bin/pytest tests/integration/test_docker_image.py

Behind a TLS-inspecting proxy, also set EXTRA_CA_CERT to its CA (PEM) as for `docker compose build`.
"""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]

pytestmark = pytest.mark.skipif(
    os.environ.get("KERBEROS_BOT_DOCKER_TESTS") != "1" or shutil.which("docker") is None,
    reason="builds Docker images: set KERBEROS_BOT_DOCKER_TESTS=1 on a machine with a Docker daemon",
)


def docker(*args: str, stdin: str | None = None, timeout: float = 1800) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], input=stdin, capture_output=True, text=True, timeout=timeout, check=False)


def build(target: str) -> str:
    tag = f"kerberos-bot-{target}:test"
    extra_ca = os.environ.get("EXTRA_CA_CERT", "")
    built = docker("build", "--target", target, "--build-arg", f"EXTRA_CA_CERT={extra_ca}", "-t", tag, str(ROOT))
    assert built.returncode == 0, built.stderr[-3000:]
    return tag


def test_the_bot_image_runs_as_a_non_root_user() -> None:
    tag = build("bot")
    uid = docker("run", "--rm", "--entrypoint", "id", tag, "-u")
    assert uid.returncode == 0 and uid.stdout.strip() not in ("", "0")
    # Kerberos to the management host works in the image, though it carries no compiler
    kerberos = docker("run", "--rm", "--entrypoint", "python", tag, "-c", "import gssapi, krb5, spnego")
    assert kerberos.returncode == 0, kerberos.stderr
    assert docker("run", "--rm", "--entrypoint", "sh", tag, "-c", "command -v gcc").returncode != 0
    helped = docker("run", "--rm", tag, "--help")
    assert helped.returncode == 0 and "serve" in helped.stdout
    # without Slack credentials `serve` refuses to start and names what is missing
    refused = docker("run", "--rm", tag, "serve", timeout=120)
    assert refused.returncode != 0 and "SLACK_SIGNING_SECRET" in refused.stdout + refused.stderr


def test_the_sandbox_image_runs_the_demo_console() -> None:
    tag = build("sandbox")
    # no Redis reachable inside the container: the demo starts its embedded redis-server
    ran = docker(
        "run", "--rm", "-i", "--cap-add", "SYS_ADMIN", "--cap-add", "NET_ADMIN",  # as docker-compose.yml
        "-e", "REDIS_URL=redis://127.0.0.1:6399/0", tag, "demo",
        stdin="/kerberos status contoso.test\nquit\n", timeout=1200,
    )  # fmt: skip
    assert ran.returncode == 0, ran.stderr[-3000:]
    assert "KeyVersion" in ran.stdout and "contoso.test" in ran.stdout
