"""What the image is built from is pinned: the base image by digest, every Python package by version
and hash (requirements.lock), and the lock satisfies pyproject.toml's ranges."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
LOCK = ROOT / "requirements.lock"


def locked(lock: Path = LOCK) -> dict[str, tuple[str, list[str]]]:
    """name -> (version, hashes) of every entry of the lock."""
    entries: dict[str, tuple[str, list[str]]] = {}
    text = lock.read_text()
    for block in re.split(r"\n(?=[A-Za-z0-9])", text):
        head = re.match(r"([A-Za-z0-9_.-]+)==([^\s\\;]+)", block)
        if head:
            entries[canonicalize_name(head.group(1))] = (
                head.group(2),
                re.findall(r"--hash=sha256:([0-9a-f]{64})", block),
            )
    return entries


def test_every_base_image_is_pinned_by_digest() -> None:
    stages: set[str] = set()
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        found = re.match(r"FROM\s+(\S+)(?:\s+AS\s+(\S+))?", line)
        if not found:
            continue
        image, stage = found.groups()
        if image not in stages:
            assert re.search(r"@sha256:[0-9a-f]{64}$", image), f"{image} is not pinned by digest"
        if stage:
            stages.add(stage)


def test_every_locked_package_has_a_version_and_hashes() -> None:
    entries = locked()
    assert len(entries) > 30
    for name, (version, hashes) in entries.items():
        assert hashes, f"{name}=={version} has no hash"


def test_the_lock_satisfies_every_dependency_of_pyproject() -> None:
    entries = locked()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for spec in project["dependencies"]:
        requirement = Requirement(spec)
        name = canonicalize_name(requirement.name)
        assert name in entries, f"{requirement.name} is not in requirements.lock: run `make lock`"
        version = entries[name][0]
        assert requirement.specifier.contains(version, prereleases=True), (
            f"requirements.lock has {name}=={version}, outside {requirement.specifier}: run `make lock`"
        )


def test_the_bot_ships_only_what_it_runs_and_the_sandbox_adds_its_own() -> None:
    """The bot image installs requirements.lock alone: the sandbox's certificate maker (trustme) is not in it;
    the sandbox's own lock holds it, by hash, pinned as the bot's lock pins what both share."""
    bot, sandbox = locked(), locked(ROOT / "requirements-sandbox.lock")
    assert "trustme" not in bot and "trustme" in sandbox and sandbox["trustme"][1]
    assert all(bot[name][0] == version for name, (version, _) in sandbox.items() if name in bot)
    dockerfile = (ROOT / "Dockerfile").read_text()
    bot_stages = dockerfile[dockerfile.index("FROM base AS wheels") :]
    assert "requirements-sandbox.lock" not in bot_stages


def test_the_images_install_only_hash_checked_packages() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    installs = re.findall(r"pip (?:install|wheel) [^\n]*", dockerfile)
    assert installs
    for command in installs:
        from_lock = "--require-hashes" in command and "-r requirements.lock" in command
        assert from_lock or "--no-deps" in command, f"not from the lock: {command}"
    assert "--no-index --no-deps /wheels/*.whl" in dockerfile and "pip check" in dockerfile


def test_the_images_compose_pulls_are_pinned_by_digest() -> None:
    for image in re.findall(r"^\s*image:\s*(\S+)", (ROOT / "docker-compose.yml").read_text(), re.M):
        if image.startswith("kerberos-bot"):  # built here from the Dockerfile
            continue
        assert re.search(r"@sha256:[0-9a-f]{64}$", image), f"{image} is not pinned by digest"
