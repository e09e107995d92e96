"""Prometheus metrics, served at /metrics on the health listener.

The composition root builds one ``Metrics`` (with its registry) per process and hands it to the
services, the Slack handlers (``BotServices.metrics``) and the web listener; nothing is registered
at import. A service built without one (a unit test) gets a private set. When ``serve`` runs command
workers, ``PROMETHEUS_MULTIPROC_DIR`` is set before prometheus_client is first imported, every
process writes its values there, and /metrics adds them up.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector


@dataclass(frozen=True)
class Metrics:
    registry: CollectorRegistry
    commands: Counter
    ack_seconds: Histogram
    decisions: Counter
    requests_finished: Counter
    verifications: Counter
    action_seconds: Histogram
    source_seconds: Histogram
    source_errors: Counter

    @classmethod
    def create(cls, registry: CollectorRegistry | None = None) -> Metrics:
        r = registry or CollectorRegistry(auto_describe=True)
        return cls(
            registry=r,
            commands=Counter(
                "kerberos_bot_commands_total",
                "Slash commands by subcommand and outcome (ok, refused, error)",
                ["subcommand", "outcome"],
                registry=r,
            ),
            ack_seconds=Histogram(
                "kerberos_bot_ack_seconds",
                "Time from receiving a Slack request to its acknowledgement",
                ["kind"],
                registry=r,
                buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0),
            ),
            decisions=Counter(
                "kerberos_bot_approval_clicks_total", "Approve/Deny clicks by verdict", ["verdict"], registry=r
            ),
            requests_finished=Counter(
                "kerberos_bot_requests_finished_total",
                "Change requests reaching a final state",
                ["action", "state"],
                registry=r,
            ),
            verifications=Counter(
                "kerberos_bot_approver_verifications_total",
                "Entra sign-ins of approvers by outcome (verified, refused, abandoned, error)",
                ["outcome"],
                registry=r,
            ),
            action_seconds=Histogram(
                "kerberos_bot_action_seconds",
                "Duration of carrying out an approved change",
                ["action", "outcome"],
                registry=r,
                buckets=(0.5, 1, 2, 5, 10, 30, 60, 120, 300),
            ),
            source_seconds=Histogram(
                "kerberos_bot_source_seconds",
                "Latency of reads from Active Directory, the Kerberos module and Entra ID",
                ["source"],
                registry=r,
                buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20),
            ),
            source_errors=Counter(
                "kerberos_bot_source_errors_total",
                "Failed reads by source and error type",
                ["source", "error"],
                registry=r,
            ),
        )

    def exposition(self) -> bytes:
        """The text /metrics serves: this process's registry, or every process's values in multiprocess mode."""
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            every_process = CollectorRegistry()
            MultiProcessCollector(every_process)  # type: ignore[no-untyped-call]
            return bytes(generate_latest(every_process))
        return bytes(generate_latest(self.registry))
