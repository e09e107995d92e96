"""One module call from a [kerberos_module.remoting] configuration, in a process of its own.

``python -m tests.support.remoting_probe '<RemotingConfig as JSON>'`` prints ``{"ok": true}`` or
``{"ok": false, "message": <the KerberosModuleError's user_message>}``. For what a test cannot do
in its own process: run under libfaketime (a bot machine whose clock is off), or with Kerberos
environment variables that must not leak into the test process.
"""

from __future__ import annotations

import asyncio
import json
import sys

from bot.bootstrap.module import build_remoting
from bot.config import RemotingConfig
from bot.domain.errors import KerberosModuleError


async def probe(config: RemotingConfig) -> dict[str, object]:
    try:
        await build_remoting(config).get_server("contoso.com")
    except KerberosModuleError as exc:
        return {"ok": False, "message": exc.user_message}
    return {"ok": True}


def main(argv: list[str]) -> int:
    config = RemotingConfig.model_validate(json.loads(argv[0]))
    print(json.dumps(asyncio.run(probe(config))))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
