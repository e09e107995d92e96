"""``kerberos-bot sandbox up`` / ``down``: the sandbox on its own, without the console.

``up`` starts the DCs, the stand-ins and the bot, writes what an operator needs to reach them to
``<workdir>/endpoints.json`` (and prints it), and runs until ``down``, SIGTERM or Ctrl-C. With it an
operator can point their own checks (or another bot configuration) at the stand-ins, seed them and
inject faults through their admin endpoints (docs/sandbox.md).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from bot.domain.errors import ConfigurationError
from kerberos_sandbox.samba_dc import DEFAULT_DOMAINS, SandboxDomain, samba
from kerberos_sandbox.sandbox import Sandbox, default_workdir, sandbox

ENDPOINTS = "endpoints.json"
PID_FILE = "sandbox.pid"


def domains_on(dc_addresses: tuple[str, ...] | None) -> tuple[SandboxDomain, ...]:
    """The default domains, on other loopback addresses: contoso.test's first DC, fabrikam.test's DC
    and (optional) contoso.test's second."""
    if dc_addresses is None:
        return DEFAULT_DOMAINS
    contoso, fabrikam = DEFAULT_DOMAINS
    replica = dc_addresses[2] if len(dc_addresses) > 2 else None
    return (
        replace(contoso, address=dc_addresses[0], replica=replica),
        replace(fabrikam, address=dc_addresses[1]),
    )


def endpoints(box: Sandbox, redis_url: str) -> dict[str, Any]:
    """Where everything listens, and the keys of the stand-ins' admin endpoints."""
    return {
        "configuration": str(box.config_path),
        "bot": {
            "slack_events": box.endpoint,
            "signing_secret": box.signing_secret,
            "health": box.health_url,
        },
        "slack_standin": {
            "web_api": box.slack.api_url,
            "bot_token": box.slack.bot_token,
            "admin": f"{box.slack.url}/_standin/",
            "admin_header": {"X-Stand-In-Key": box.slack.admin_key},
        },
        "entra_standin": {
            "url": box.entra.url,
            "tenant_id": box.entra.tenant_id,
            "client_id": box.entra.client_id,
            "ca_file": str(box.entra.ca_file),
            "admin": f"{box.entra.url}/_standin/",
            "admin_header": {"X-Stand-In-Key": box.entra.admin_key},
        },
        "redis": redis_url,
        "domain_controllers": {
            d.name: {"ldaps": [f"ldaps://{a}:636" for a in d.addresses], "ca_file": str(d.ca_file)} for d in box.domains
        },
    }


async def run_up(workdir: Path | None, redis_url: str, dc_addresses: tuple[str, ...] | None) -> int:
    workdir = workdir or default_workdir()
    workdir.mkdir(parents=True, exist_ok=True)
    pid_file = workdir / PID_FILE
    if _running_pid(pid_file) is not None:
        raise ConfigurationError(f"a sandbox already runs from {workdir} (pid {pid_file.read_text().strip()})")
    started = time.monotonic()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    domains = domains_on(dc_addresses)
    print(f"kerberos-bot sandbox: starting {', '.join(d.name for d in domains)} and the stand-ins…", flush=True)
    async with sandbox(domains, workdir=workdir, redis_url=redis_url) as box:
        where = endpoints(box, box.redis_url)
        (workdir / ENDPOINTS).write_text(json.dumps(where, indent=2) + "\n", encoding="utf-8")
        pid_file.write_text(f"{os.getpid()}\n", encoding="utf-8")
        try:
            print(json.dumps(where, indent=2), flush=True)
            print(
                f"ready in {time.monotonic() - started:.0f} s; written to {workdir / ENDPOINTS}. "
                "`kerberos-bot sandbox down` (or Ctrl-C) stops it.",
                flush=True,
            )
            await stop.wait()
        finally:
            pid_file.unlink(missing_ok=True)
            (workdir / ENDPOINTS).unlink(missing_ok=True)
    return 0


def _running_pid(pid_file: Path) -> int | None:
    try:
        pid = int(pid_file.read_text().strip())
        os.kill(pid, 0)
    except (FileNotFoundError, ValueError, ProcessLookupError):
        return None
    except PermissionError:
        pass  # it runs, as another user
    return pid


async def run_down(
    workdir: Path | None, dc_addresses: tuple[str, ...] | None, *, keep_dcs: bool = False, timeout: float = 60.0
) -> int:
    """Stop the ``up`` process of ``workdir`` (it cleans up after itself), then the DCs (unless ``keep_dcs``:
    the tests and the demo share them)."""
    workdir = workdir or default_workdir()
    pid = _running_pid(workdir / PID_FILE)
    if pid is not None:
        os.kill(pid, signal.SIGTERM)
        for _ in range(int(timeout / 0.2)):  # another process: nothing to await but its pid file going
            if _running_pid(workdir / PID_FILE) is None:
                break
            await asyncio.sleep(0.2)
        print(f"stopped the sandbox (pid {pid})", flush=True)
    else:
        print(f"no sandbox runs from {workdir}", flush=True)
    if not keep_dcs:
        for domain in domains_on(dc_addresses):
            await samba("down", domain)
        print("stopped the DCs", flush=True)
    return 0
