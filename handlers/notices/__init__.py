"""What people are told about a request in Slack, one job a module:

cards.py      the card: posted, linked, redrawn from the stored request; lines in its thread
decisions.py  what a click's decision says (refusals to the clicker, the card, the thread)
alerts.py     the alert channel, for emergencies
worker.py     ``SlackChangeNotices``: the change worker's reports
scheduler.py  ``SlackLifecycleNotices``: the scheduler's reports
direct.py     direct messages, and the requesters' (``SlackRequesterMessages``)
"""
