"""Prometheus metrics, served at /metrics in HTTP mode.

One registry per process; when ``serve`` runs command workers, ``PROMETHEUS_MULTIPROC_DIR`` is set
before this module is imported, every process writes its values there, and /metrics adds them up.
"""

from __future__ import annotations

import os

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

REGISTRY = CollectorRegistry(auto_describe=True)

COMMANDS = Counter(
    "kerberos_bot_commands_total",
    "Slash commands by subcommand and outcome (ok, refused, error)",
    ["subcommand", "outcome"],
    registry=REGISTRY,
)
ACK_SECONDS = Histogram(
    "kerberos_bot_ack_seconds",
    "Time from receiving a Slack request to its acknowledgement",
    ["kind"],
    registry=REGISTRY,
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0),
)
DECISIONS = Counter(
    "kerberos_bot_approval_clicks_total",
    "Approve/Deny clicks by verdict",
    ["verdict"],
    registry=REGISTRY,
)
REQUESTS_FINISHED = Counter(
    "kerberos_bot_requests_finished_total",
    "Change requests reaching a final state",
    ["action", "state"],
    registry=REGISTRY,
)
VERIFICATIONS = Counter(
    "kerberos_bot_approver_verifications_total",
    "Entra sign-ins of approvers by outcome (verified, refused, abandoned, error)",
    ["outcome"],
    registry=REGISTRY,
)
ACTION_SECONDS = Histogram(
    "kerberos_bot_action_seconds",
    "Duration of carrying out an approved change",
    ["action", "outcome"],
    registry=REGISTRY,
    buckets=(0.5, 1, 2, 5, 10, 30, 60, 120, 300),
)
SOURCE_SECONDS = Histogram(
    "kerberos_bot_source_seconds",
    "Latency of reads from Active Directory, the Kerberos module and Entra ID",
    ["source"],
    registry=REGISTRY,
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20),
)
SOURCE_ERRORS = Counter(
    "kerberos_bot_source_errors_total",
    "Failed reads by source and error type",
    ["source", "error"],
    registry=REGISTRY,
)


def exposition() -> bytes:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        every_process = CollectorRegistry()
        MultiProcessCollector(every_process)  # type: ignore[no-untyped-call]
        return bytes(generate_latest(every_process))
    return bytes(generate_latest(REGISTRY))
