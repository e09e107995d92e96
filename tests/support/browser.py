"""Headless Chromium from Debian's packages (chromium, chromium-driver), driven by selenium, trusting
the Entra stand-in's private CA through an NSS database in a throw-away HOME.

What ../shared/notes/headless-browser.md verified on these machines: the driver path is given, so
Selenium Manager never runs (and SE_OFFLINE keeps it offline if it did); --no-sandbox because the
tests run as root; --host-resolver-rules so that Chromium's start-up lookups of Google hosts cannot
hold up the first page; WebDriverWait keeps polling through "aborted by navigation".
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import threading
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.support.ui import WebDriverWait

os.environ.setdefault("SE_OFFLINE", "true")

FLAGS = (
    "--headless=new",
    "--no-sandbox",  # root: Chromium refuses to start otherwise
    "--disable-dev-shm-usage",  # CI containers often have a 64 MB /dev/shm
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1 , EXCLUDE localhost",
    "--window-size=1280,900",
)


def _needed(name: str) -> str:
    path = shutil.which(name)
    if not path:
        pytest.fail(f"{name} is not installed: run scripts/install-system-packages.sh (chromium, chromium-driver)")
    return path


def _trusting_home(home: Path, ca_file: Path) -> None:
    """Chromium on Linux reads user-added CAs from $HOME/.pki/nssdb (certutil from libnss3-tools)."""
    certutil = _needed("certutil")
    database = home / ".pki" / "nssdb"
    database.mkdir(parents=True)
    subprocess.run([certutil, "-d", f"sql:{database}", "-N", "--empty-password"], check=True)
    subprocess.run(
        [certutil, "-d", f"sql:{database}", "-A", "-t", "C,,", "-n", "entra-standin-ca", "-i", str(ca_file)],
        check=True,
    )


def chromium(workdir: Path, ca_file: Path) -> webdriver.Chrome:
    """A fresh browser with its own profile (no cookies shared with any other) that trusts ``ca_file``."""
    home = workdir / "home"
    home.mkdir(parents=True)
    _trusting_home(home, ca_file)
    options = webdriver.ChromeOptions()
    options.binary_location = _needed("chromium")
    for flag in (*FLAGS, f"--user-data-dir={workdir / 'profile'}"):
        options.add_argument(flag)
    service = Service(
        executable_path=_needed("chromedriver"),
        env={**os.environ, "HOME": str(home)},
        log_output=str(workdir / "chromedriver.log"),
    )
    driver = webdriver.Chrome(service=service, options=options)
    driver.set_page_load_timeout(15)
    return driver


def waiting(driver: webdriver.Chrome, seconds: float = 15) -> WebDriverWait[webdriver.Chrome]:
    # a click that submits a form returns before the navigation starts; the next command can then
    # fail with "aborted by navigation", a plain WebDriverException: keep polling through it
    return WebDriverWait(driver, seconds, ignored_exceptions=(WebDriverException,))


def close(driver: webdriver.Chrome, timeout: float = 15.0) -> None:
    """Quit the browser; a chromedriver that does not answer within ``timeout`` is killed, so a stuck
    browser can never hold the suite (its HTTP calls have no deadline of their own)."""
    done = threading.Event()

    def quit_browser() -> None:
        with contextlib.suppress(Exception):
            driver.quit()
        done.set()

    threading.Thread(target=quit_browser, daemon=True).start()
    if not done.wait(timeout):
        process = driver.service.process
        if process is not None:
            process.kill()
