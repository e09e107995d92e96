"""The change engine: the use cases of the dangerous actions, and the only place approval is enforced,
so no entry point can skip it. One job per module:

    intake.py     taking requests (who may ask, the action's pre-flight and plan, the signed record)
    decisions.py  approve, deny, withdraw, nudge; reminders, escalation and expiry
    authority.py  who may approve what (approver groups, the fallback group), approvals re-checked
    holds.py      freezes and change windows
    executor.py   claim, lease, re-validation, the journalled module call, the outcome, recovery
    inventory.py  what exists in AD and Entra after a change that failed mid-way
    queries.py    reads: a request, a domain's history, the key's window and replication
    events.py     the watchers told of every change of a request
    rates.py      how fast people may ask, click and nudge; limits.py: leases, timeouts, retention
    engine.py     ``ChangeEngine``: the parts built together (``build_engine``)

What an action plans and carries out lives with the action, in bot/actions/.
"""
