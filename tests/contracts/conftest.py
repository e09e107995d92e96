"""The contract suites run each port's cases against the in-memory fake and the real adapter (real
Redis, the Samba DC, the Entra stand-in): a fake that passes here behaves as the adapter does."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.support.samba import SambaDC, contoso, ensure_up
from tests.support.sandboxes import box  # noqa: F401  (the shared module-scoped sandbox fixture)


@pytest.fixture(scope="session")
async def contoso_dc() -> AsyncIterator[SambaDC]:
    yield await ensure_up(contoso())
