"""The composition root: with the entry points, the only code that reads configuration. One job a module:

    policy.py      the configuration turned into policy (pure functions)
    adapters.py    builders of the directories, Entra, Redis's and Slack's clients, the SIEM sinks
    module.py      the Kerberos module: the emulator or Microsoft's module over PowerShell Remoting
    storage.py     ``Storage``, the bundle of the storage ports, and its Redis builder
    services.py    the services over the adapters (status, the change engine, verification, ...)
    components.py  ``build_components``: adapters and services, any port replaced by kind
    slack.py       ``build_bot``: the Slack side and the workers around the services; ``assemble_bot``
                   for services a test built; ``running_bot``

``kerberos-bot serve``, ``socket`` and ``worker``, the sandbox and the tests all go through
``build_bot``; ``check`` uses the builders one adapter at a time, so that each check stands alone.
"""
