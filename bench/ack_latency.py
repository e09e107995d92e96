"""Acknowledgement latency of /kerberos status against a bare slack-bolt app, and the cost of a status.

Starts the sandbox (real Samba DCs, Entra and Slack stand-ins) in this process, and the two servers
under test each in a process of its own, as they would run in production: ``kerberos-bot serve``
configured against the sandbox, and a bare slack-bolt AsyncApp on the same aiohttp stack with one
no-op command (``bench/bare_bolt.py``). A separate load generator process sends signed slash
commands at 50 concurrent clients to each, alternating rounds, over connections it opened before the
clock starts, and serves the response URLs; this script prints p50/p99 of the acknowledgements and their
ratio (goal <= 1.25), and apart from them what opening the connections took. Then it times the bot's
replies in rounds of their own (command sent to its answer at the response URL). Then it runs one
status per domain in the sandbox's own bot and prints the LDAP operations, Graph calls,
module-store calls and token requests it made (goals: <= 3 LDAP operations per domain, no token
request when the msal cache is warm).

Then it files requests through the bot and clicks Approve on each (``bench/clickgen.py``, 50 clients):
the time from a click to the card's update at the Slack stand-in.

usage: python -m bench.ack_latency [--requests 2000] [--concurrency 50] [--rounds 10] [--command-workers 1]
                                   [--cards 200] [--replies 1000] [--worker-during-acks]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
from collections.abc import Callable
from typing import Any

from kerberos_sandbox.sandbox import Sandbox, sandbox

from bench.cores import (
    STAND_IN_NICE,
    cpu_seconds,
    hold,
    pin,
    pin_samba,
    pinned_at_start,
    set_nice,
    split,
    while_timing,
)
from bench.servers import (
    BARE_SECRET,
    BOT_SECRET,
    SERVE_LOG,
    bare_bolt_process,
    bench_redis,
    bot_process,
    memory_line,
    warnings_in,
)
from tests.support.processes import children


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


async def load(
    endpoint: str,
    secret: str,
    requests: int,
    concurrency: int,
    reply_wait: float,
    box: Sandbox | None = None,
    *,
    text: str = "status",
    channels: int = 1,
    resume: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """``box``: the replies go to its Slack stand-in (an origin the bot posts replies to) and are counted there.
    ``resume``: called once every acknowledgement is in, before the replies are waited for."""
    before = len(box.slack.responses()) if box is not None else 0
    reply_base = [box.slack.url, str(channels)] if box is not None else []
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.loadgen",
        endpoint,
        secret,
        text,
        str(requests),
        str(concurrency),
        str(reply_wait),
        *reply_base,
        stdout=asyncio.subprocess.PIPE,
        preexec_fn=pinned_at_start(None),  # at normal priority, beside this process's stand-ins
    )
    try:
        out, _ = await proc.communicate()
    finally:
        if resume is not None:
            resume()
    result: dict[str, Any] = json.loads(out)
    if box is not None:
        result["replies"] = await box.slack.wait_for_response_count(before + requests, reply_wait) - before
        # command sent to its answer at the response URL: CLOCK_MONOTONIC is one clock for every process here
        arrived = {c.name: c.at for c in box.slack.calls if c.kind == "response_url"}
        sent: dict[str, float] = result["sent"]
        result["reply_latencies"] = [arrived[rid] - at for rid, at in sent.items() if rid in arrived]
    return result


# the bench's policy for the click phase: approvals by a Slack click (no sign-in), two needed, so a click
# updates the card without starting a change; one person's rates do not limit a burst of many
BENCH_CONFIG = """clicks_per_minute = 1000000
requests_per_hour = 1000000

[approvals.rotate_force]
verified_approval = false
approvals_required = 2
"""
APPROVERS = ("U0BOB", "U0CAROL", "U0DAVE")
BARE = "bare bolt"  # as a newcomer gets it: Bolt looks for the acknowledgement every 10 ms
BARE_BEFORE = "bare bolt, process_before_response"  # answered when the listener returns, as the bot's app is
CARD_CHANNELS = 50


def spread(values: list[float], digits: int = 2) -> str:
    return f"{min(values):.{digits}f}-{max(values):.{digits}f}"


async def click_to_card(
    box: Sandbox, endpoint: str, cards: int, concurrency: int
) -> tuple[list[float], list[float], int]:
    """File ``cards`` requests through the bot, then click Approve on each at ``concurrency`` clients (from
    ``bench/clickgen.py``, a process of its own); returns, per click, the time until the Slack stand-in received
    the card's update, the clicks' acknowledgements, and how many were answered with a refusal."""
    posted_before = len(box.slack.api_calls("chat.postMessage"))
    # in many channels, as a company's teams would: Slack lets a bot post about one message a second per channel
    filed = await load(
        endpoint, BOT_SECRET, cards, 10, 60.0, box, text="rotate contoso.test --force -- bench", channels=CARD_CHANNELS
    )
    if filed["statuses"] != {"200": cards}:
        raise RuntimeError(f"filing the requests: {filed['statuses']}")
    found: list[dict[str, str]] = []
    for _ in range(600):
        posts = box.slack.api_calls("chat.postMessage")[posted_before:]
        found = [
            {"value": str(action["value"]), "ts": c.ts, "channel": str(c.body["channel"])}
            for c in posts
            for block in _blocks(c.body)
            if block.get("type") == "actions"
            for action in block.get("elements", [])[:1]
        ]
        if len(found) >= cards:
            break
        await asyncio.sleep(0.1)
    clicks = [{**card, "user": APPROVERS[i % len(APPROVERS)]} for i, card in enumerate(found)]
    updates_before = len(box.slack.api_calls("chat.update"))
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.clickgen", endpoint, BOT_SECRET, str(concurrency),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, preexec_fn=pinned_at_start(None),
    )  # fmt: skip
    out, _ = await proc.communicate(json.dumps(clicks).encode())
    clicked = json.loads(out)
    sent: dict[str, float] = clicked["sent"]
    refused = [c for c in box.slack.api_calls("chat.postEphemeral") if c.at >= min(sent.values(), default=0.0)]
    for _ in range(600):
        updated = {str(c.body.get("ts")): c.at for c in box.slack.api_calls("chat.update")[updates_before:]}
        if len(set(updated) & set(sent)) >= len(sent):
            break
        await asyncio.sleep(0.1)
    return [updated[ts] - at for ts, at in sent.items() if ts in updated], clicked["acks"], len(refused)


def _blocks(body: dict[str, Any]) -> list[dict[str, Any]]:
    blocks = body.get("blocks", [])
    return list(json.loads(blocks) if isinstance(blocks, str) else blocks)


async def main(
    requests: int,
    concurrency: int,
    rounds: int,
    redis_url: str | None,
    command_workers: int,
    cards: int,
    reply_requests: int,
    worker_during_acks: bool = False,
) -> None:
    cores = split()
    if cores is not None:
        pin(os.getpid(), cores.rest)  # this process, and all it starts unless told otherwise
    set_nice(
        os.getpid(), STAND_IN_NICE
    )  # its Entra and Slack stand-ins (and the DCs it starts) stand for remote services
    async with bench_redis(redis_url) as bot_redis, sandbox(extra_config=BENCH_CONFIG) as box:
        if cores is not None:
            pin_samba(cores.rest)  # DCs kept running from an earlier start
        samples: dict[str, list[float]] = {BARE: [], BARE_BEFORE: [], "kerberos-bot": []}
        openings: dict[str, list[float]] = {name: [] for name in samples}  # each round's connections, untimed
        cpu: dict[str, float] = dict.fromkeys(samples, 0.0)  # the server process's CPU seconds in its rounds
        reply_expected = 0
        codes: dict[str, dict[str, int]] = {name: {} for name in samples}
        replies = 0
        bot = bot_process(box, bot_redis, command_workers, cores)
        async with (
            bot as (bot_endpoint, bot_pid),
            bare_bolt_process(box, cores) as (bare_endpoint, bare_pid),
            bare_bolt_process(box, cores, "before-response") as (bare_before_endpoint, bare_before_pid),
        ):
            idle = memory_line(bot_pid)
            # warm-up: connections, msal token, LDAP binds, in every server
            await load(bot_endpoint, BOT_SECRET, 50, 10, 30.0, box)
            await load(bare_endpoint, BARE_SECRET, 50, 10, 0.0)
            await load(bare_before_endpoint, BARE_SECRET, 50, 10, 0.0)
            round_ratios: list[tuple[float, float]] = []
            # what stands in for other machines, and the bot's worker, only on what the load generator and Redis
            # leave idle while the acknowledgements are timed (bench/cores.py)
            with while_timing([os.getpid(), *children(bot_pid)]):
                for _ in range(rounds):
                    this_round: dict[str, list[float]] = {}
                    for name, endpoint, secret, pid in (
                        (BARE, bare_endpoint, BARE_SECRET, bare_pid),
                        ("kerberos-bot", bot_endpoint, BOT_SECRET, bot_pid),
                        (BARE_BEFORE, bare_before_endpoint, BARE_SECRET, bare_before_pid),
                    ):
                        # the bot replies to every command; the bare app never does
                        replied_to = box if name == "kerberos-bot" else None
                        wait = 60.0 if replied_to is not None else 0.0
                        used = cpu_seconds(pid)
                        # the bot's worker takes the round's commands once its acknowledgements are all in
                        held = children(bot_pid) if name == "kerberos-bot" and not worker_during_acks else []
                        result = await load(
                            endpoint, secret, requests // rounds, concurrency, wait, replied_to, resume=hold(held)
                        )
                        cpu[name] += cpu_seconds(pid) - used
                        samples[name] += result["latencies"]
                        openings[name] += result["openings"]
                        this_round[name] = result["latencies"]
                        if name == "kerberos-bot":
                            replies += result["replies"]
                        for code, count in result["statuses"].items():
                            codes[name][code] = codes[name].get(code, 0) + count
                    mine, bare = this_round["kerberos-bot"], this_round[BARE]
                    round_ratios.append(
                        (percentile(mine, 50) / percentile(bare, 50), percentile(mine, 99) / percentile(bare, 99))
                    )
            # the replies, with the worker and the stand-ins back at a lower priority only
            reply_rounds: list[list[float]] = []
            for _ in range(rounds if reply_requests else 0):
                result = await load(bot_endpoint, BOT_SECRET, reply_requests // rounds, concurrency, 60.0, box)
                reply_rounds.append(result["reply_latencies"])
                reply_expected += reply_requests // rounds
                replies += result["replies"]
            reply_latencies = [latency for batch in reply_rounds for latency in batch]
            loaded = memory_line(bot_pid)
            card_latencies, click_acks, refused = (
                await click_to_card(box, bot_endpoint, cards, concurrency) if cards else ([], [], 0)
            )

        print(
            f"ack latency, {requests} signed /kerberos status requests each, {concurrency} concurrent clients; "
            f"kerberos-bot serve --command-workers {command_workers}"
        )
        print(f"cores: {cores.describe()}" if cores else "cores: one, shared by everything (no fair split)")
        print(
            "priority: while the acknowledgements are timed, the DCs, the Entra and Slack stand-ins and the bot's "
            "command worker in the idle class; while the replies are, at nice "
            f"{STAND_IN_NICE} (the worker at 19); the load generators, Redis and the servers always at 0"
        )
        print(
            "the command worker: takes a round's commands while its acknowledgements are timed (--worker-during-acks)"
            if worker_during_acks
            else "the command worker: stopped in each of the bot's timed rounds until its acknowledgements are all in"
        )
        print(f"{'target':<34}{'p50 ms':>10}{'p99 ms':>10}{'mean ms':>10}{'CPU/req ms':>12}  HTTP statuses")
        for name, values in samples.items():
            print(
                f"{name:<34}{percentile(values, 50) * 1000:>10.1f}{percentile(values, 99) * 1000:>10.1f}"
                f"{statistics.mean(values) * 1000:>10.1f}{cpu[name] / len(values) * 1000:>12.2f}  {codes[name]}"
            )
        print(
            f"  opening a round's {concurrency} connections at once (a signed ssl_check each, before the clock "
            "starts): p50/p99 ms "
            + ", ".join(
                f"{name} {percentile(values, 50) * 1000:.1f}/{percentile(values, 99) * 1000:.1f}"
                for name, values in openings.items()
            )
        )
        for baseline in (BARE, BARE_BEFORE):
            p50 = percentile(samples["kerberos-bot"], 50) / percentile(samples[baseline], 50)
            p99 = percentile(samples["kerberos-bot"], 99) / percentile(samples[baseline], 99)
            goal = " (goal <= 1.25)" if baseline == BARE else ""
            print(f"ratio kerberos-bot / {baseline}: p50 {p50:.2f}, p99 {p99:.2f}{goal}")
        print(
            f"  spread over the {rounds} rounds: p50 ratio {spread([r[0] for r in round_ratios])}, "
            f"p99 ratio {spread([r[1] for r in round_ratios])}"
        )
        expected = len(samples["kerberos-bot"]) + reply_expected
        print(f"status replies delivered to response URLs: {replies} of {expected}")
        if replies < expected:
            print(f"  some never came: serve's log (its workers' too) is {SERVE_LOG}; its last warnings and errors:")
            for line in warnings_in(SERVE_LOG)[-5:]:
                print(f"  {line}")
        if reply_latencies:
            print(
                f"reply latency ({len(reply_latencies)} more commands in {len(reply_rounds)} rounds of their own, "
                f"{concurrency} clients; command sent to its answer at the response URL): p50 "
                f"{percentile(reply_latencies, 50) * 1000:.0f} ms, p99 {percentile(reply_latencies, 99) * 1000:.0f} ms"
            )
            print(
                f"  spread over the rounds: p50 {spread([percentile(r, 50) * 1000 for r in reply_rounds if r], 0)} ms, "
                f"p99 {spread([percentile(r, 99) * 1000 for r in reply_rounds if r], 0)} ms"
            )
        if card_latencies:
            print(
                f"click to card update ({len(card_latencies)} of {cards} Approve clicks on a Slack-only policy, "
                f"{concurrency} clients, the update as the Slack stand-in received it): p50 "
                f"{percentile(card_latencies, 50) * 1000:.0f} ms, p99 {percentile(card_latencies, 99) * 1000:.0f} ms"
            )
            print(
                f"  the clicks' acknowledgements: p50 {percentile(click_acks, 50) * 1000:.0f} ms, p99 "
                f"{percentile(click_acks, 99) * 1000:.0f} ms; answered with a refusal: {refused}"
            )
        print(f"resident memory at idle: {idle}; after the load: {loaded}")

        print("\ncost of one status, per domain (warm caches)")
        await box.command("status")  # warms the sandbox's own bot: token, binds, DC map
        await asyncio.sleep(1)
        for domain in box.domains:
            directory = box.components.directories[domain.name]
            ldap_before = getattr(directory, "operations", 0)
            entra_before = dict(box.entra.request_counts())
            await box.components.services.status.status(domain.name)
            ldap_ops = getattr(directory, "operations", 0) - ldap_before
            after = box.entra.request_counts()
            delta = {k: after.get(k, 0) - entra_before.get(k, 0) for k in after}
            print(
                f"{domain.name:<16} LDAP operations {ldap_ops} (goal <= 3); stand-in requests: "
                + ", ".join(f"{k} {v}" for k, v in sorted(delta.items()) if v)
            )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument(
        "--rounds", type=int, default=10, help="alternating rounds per server: the machine's drift falls on both alike"
    )
    parser.add_argument(
        "--redis-url",
        default=None,
        help="the bot process's Redis (its keys are removed); default: a private redis-server on the bench's cores",
    )
    parser.add_argument(
        "--command-workers", type=int, default=1, help="passed to kerberos-bot serve (0: the work runs in its process)"
    )
    parser.add_argument("--cards", type=int, default=200, help="Approve clicks timed to their card update (0: none)")
    parser.add_argument(
        "--replies", type=int, default=1000, help="commands timed to their reply, in rounds of their own (0: none)"
    )
    parser.add_argument(
        "--worker-during-acks",
        action="store_true",
        help="let the command worker take the commands while the acknowledgements are timed (in the idle class) "
        "instead of once a round's acknowledgements are in",
    )
    args = parser.parse_args()
    asyncio.run(
        main(
            args.requests,
            args.concurrency,
            args.rounds,
            args.redis_url,
            args.command_workers,
            args.cards,
            args.replies,
            args.worker_during_acks,
        )
    )
