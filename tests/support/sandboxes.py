"""The module-scoped sandbox most integration tests share (Samba DCs, stand-ins, the bot in process;
approvers verified by Slack groups only). Import the fixture where it is used:

    (the fixture is imported by tests/integration/conftest.py and tests/contracts/conftest.py)
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from kerberos_sandbox.sandbox import Sandbox, sandbox

from tests.support.samba import sandbox_domains


@pytest.fixture(scope="module")
async def box(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Sandbox]:
    async with sandbox(
        sandbox_domains(), workdir=Path(tmp_path_factory.mktemp("sandbox")), verified_approvals=False
    ) as running:
        yield running
