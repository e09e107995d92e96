"""The action kinds, one module per family: each holds its pre-flight (what refuses up front and writes
the plan approvers see) and its carry-out (what the worker does once it is approved), as plain
functions over a narrow port (``base.ActionContext`` and the request's ``base.Run``).

    rotation.py  rotate, rotate --force, emergency-rotate (and the second rotation of a double one)
    setup.py     setup (the Kerberos server and the cloud trust, the multi-domain forest rule)
    removal.py   remove-tdo, remove-all
    review.py    the emergency review (people acknowledge; nothing changes)
    registry.py  ``ACTION_SPECS``: collected from the modules above; a kind without a spec fails at import

Adding a kind: its ``ActionKind`` (bot/domain/approvals.py), its module here (or a spec in a family's
``SPECS``), the module port's call if it needs a new cmdlet, its slash command's handler, and tests
(docs/architecture.md lists them; tests/unit/test_action_table.py names what is missing).
"""
