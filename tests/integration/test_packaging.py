"""What ships: the product's wheel holds bot/ and handlers/ (with their .lua and .ps1 files) and none of
the sandbox; the sandbox's wheel carries its shell scripts; the CLI says how to get a missing sandbox."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[str]]:
    out = tmp_path_factory.mktemp("wheels")
    sources = tmp_path_factory.mktemp("sources")  # setuptools leaves build/ beside the sources: not in the checkout
    skip = shutil.ignore_patterns("__pycache__", "*.egg-info", "build")
    product, sandbox = sources / "product", sources / "sandbox"
    for part in ("bot", "handlers"):
        shutil.copytree(ROOT / part, product / part, ignore=skip)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, product / name)
    shutil.copytree(ROOT / "sandbox", sandbox, ignore=skip)
    for project in (product, sandbox):
        subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out), str(project)],
            check=True,
            capture_output=True,
        )
    built = {}
    for wheel in out.glob("*.whl"):
        with zipfile.ZipFile(wheel) as archive:
            built[wheel.name.split("-")[0]] = archive.namelist()
    return built


def test_the_product_wheel_holds_no_sandbox(wheels: dict[str, list[str]]) -> None:
    names = wheels["kerberos_bot"]
    packages = {n.split("/")[0] for n in names if not n.startswith("kerberos_bot-")}
    assert packages == {"bot", "handlers"}
    assert not [n for n in names if "sandbox" in n or "standin" in n or n.endswith(".sh")]
    # the scripts the adapters load with importlib.resources
    assert {"bot/adapters/redis/lua/approve.lua", "bot/adapters/redis/lua/claim.lua"} <= set(names)
    assert {"bot/adapters/kerberos_module/remoting/scripts/run.ps1"} <= set(names)


def test_the_sandbox_wheel_carries_its_scripts(wheels: dict[str, list[str]]) -> None:
    names = wheels["kerberos_bot_sandbox"]
    assert "kerberos_sandbox/scripts/samba-dc.sh" in names and "kerberos_sandbox/scripts/samba-pair.sh" in names
    assert {n.split("/")[0] for n in names if not n.startswith("kerberos_bot_sandbox-")} == {"kerberos_sandbox"}


@pytest.mark.parametrize("command", [["demo"], ["sandbox", "up"]])
def test_without_the_sandbox_the_cli_says_how_to_install_it(command: list[str]) -> None:
    # as on a host with only the product installed: the sandbox cannot be imported
    code = (
        "import sys; sys.modules['kerberos_sandbox'] = None; "
        f"from bot.entrypoints.cli import main; sys.exit(main({command!r}))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "the sandbox is not installed" in done.stderr and "make install" in done.stderr
