"""Redis killed and restarted under the bot, on a private redis-server (append-only, fsync always):
the next operation after a restart succeeds; while Redis is down every click is answered in one clear
line; a burst of clicks cut by kill -9 never executes twice and leaves a complete audit trail."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest
from kerberos_sandbox.redis_server import PrivateRedis
from kerberos_sandbox.slack_requests import block_actions_payload, interaction_form, send_slash_command
from kerberos_sandbox.slack_standin import SlackStandIn

from bot.adapters.redis.client import connect
from bot.adapters.redis.store import RedisApprovalStore
from bot.domain.approvals import Action, ActionPolicy, RequestState, Verdict
from bot.domain.errors import StoreUnavailable
from bot.services.container import BotServices
from bot.services.status import StatusService
from handlers.views.cards import APPROVE_ACTION
from tests.contracts.test_approval_store import LEASE, new_request
from tests.support.botserver import running_bot
from tests.support.engine import engine_on_fakes
from tests.support.fakes import NOW, FakeDirectory, FakeEntra, FakeGroups, FakeKerberosModule, on_prem_state


async def test_the_first_operation_after_a_redis_restart_succeeds_on_every_pooled_connection(
    redis_server: PrivateRedis,
) -> None:
    store = RedisApprovalStore(connect(redis_server.url), "kbot")
    requests = [new_request(required=3) for _ in range(8)]
    await asyncio.gather(*(store.create(r) for r in requests))  # eight pooled connections
    await asyncio.gather(*(store.approve(r.id, "U0BOB", datetime.now(UTC)) for r in requests))
    await redis_server.kill()
    await redis_server.start()
    results = await asyncio.gather(*(store.approve(r.id, "U0CAROL", datetime.now(UTC)) for r in requests))
    assert {r.verdict for r in results} == {Verdict.RECORDED}
    await store.close()


async def test_with_redis_down_a_store_call_says_so_in_one_line(redis_server: PrivateRedis) -> None:
    store = RedisApprovalStore(connect(redis_server.url), "kbot")
    await redis_server.kill()
    with pytest.raises(StoreUnavailable, match=r"^The approval store \(Redis\) is unavailable; nothing was changed\.$"):
        await store.approve("0123456789", "U0BOB", datetime.now(UTC))
    await store.close()


async def test_a_click_while_redis_is_down_is_answered_and_the_next_one_after_the_restart_counts(
    redis_server: PrivateRedis,
) -> None:
    directories = {
        "contoso.test": FakeDirectory(on_prem_state("contoso.test", key_updated_on=NOW - timedelta(days=40)))
    }
    module = FakeKerberosModule.in_step(directories)
    store = RedisApprovalStore(connect(redis_server.url), f"kbot-{uuid.uuid4().hex[:6]}")
    changes = engine_on_fakes(
        store=store,
        module=module,
        directories=directories,
        groups=FakeGroups({"S0ADMINS": frozenset({"U0BOB"})}),
        policies={a: ActionPolicy(1, timedelta(hours=1), frozenset(), frozenset({"S0ADMINS"})) for a in Action},
        clock=lambda: NOW,
    )
    services = BotServices(StatusService(directories, module, FakeEntra(), clock=lambda: NOW), changes=changes)
    async with SlackStandIn() as slack, running_bot(services, slack) as bot, aiohttp.ClientSession() as session:
        request = await changes.intake.request_rotation("contoso.test", requester="U0ALICE", reason="q4", force=False)
        await changes.decisions.card_posted(request.id, "C0PLATFORM", "1.000100")
        payload = block_actions_payload(
            user_id="U0BOB",
            action_id=APPROVE_ACTION,
            value=changes.decisions.button_value(request),
            channel_id="C0PLATFORM",
            message_ts="1.000100",
        )

        async def click() -> int:
            form = interaction_form(payload)
            return (await send_slash_command(session, bot.endpoint, bot.signing_secret, form)).status

        await redis_server.kill()
        assert await click() == 200
        [refusal] = await slack.wait_for_api("chat.postEphemeral", 1, 15)
        assert "The approval store (Redis) is unavailable; nothing was changed." in refusal.body["text"]
        await redis_server.start()
        assert await click() == 200
        await slack.wait_for_api("chat.update", 1, 10)  # the card shows the approval
        kept = await changes.queries.get(request.id)
        assert kept is not None and kept.state == RequestState.APPROVED
    await store.close()


async def test_kill_9_of_redis_during_a_burst_of_clicks_never_executes_twice(redis_server: PrivateRedis) -> None:
    store = RedisApprovalStore(connect(redis_server.url), "kbot", reclaim_after=timedelta(0))
    requests = [new_request(required=2) for _ in range(20)]
    for r in requests:
        await store.create(r)

    async def clicks(request_id: str) -> list[Verdict | str]:
        out: list[Verdict | str] = []
        for who in ("U0BOB", "U0CAROL", "U0DAVE"):
            try:
                out.append((await store.approve(request_id, who, datetime.now(UTC))).verdict)
            except StoreUnavailable as exc:
                out.append(exc.user_message)
        return out

    burst = asyncio.gather(*(clicks(r.id) for r in requests))
    await asyncio.sleep(0.005)
    await redis_server.kill()
    answers = await burst
    for answer in answers:  # every click was answered: counted, or the one clear line
        assert all(
            isinstance(a, Verdict) or a == "The approval store (Redis) is unavailable; nothing was changed."
            for a in answer
        )
    await redis_server.start()
    for r in requests:  # the approvers click again after the restart
        for who in ("U0BOB", "U0CAROL"):
            await store.approve(r.id, who, datetime.now(UTC))
    claims: Counter[str] = Counter()
    for worker in ("w1", "w2", "w3"):
        while (claimed := await store.claim_next(worker, LEASE, datetime.now(UTC))) is not None:
            claims[claimed.request.id] += 1
            await store.finish(claimed, RequestState.SUCCEEDED, "done", datetime.now(UTC))
    assert claims == Counter({r.id: 1 for r in requests})  # every request once, none twice
    for r in requests:
        events = [e.event for e in await store.audit(r.id)]
        assert events[0] == "requested" and events.count("claimed") == 1 and events[-1] == "succeeded"
        assert events.count("approved") == 2
    await store.close()


async def test_check_reports_a_redis_that_evicts_keys(tmp_path: Path) -> None:
    from bot.entrypoints.check import _redis

    evicting = PrivateRedis(tmp_path, "--maxmemory-policy", "allkeys-lru")
    await evicting.start()
    try:
        result = await _redis(evicting.url)
    finally:
        await evicting.stop()
    assert not result.ok and "allkeys-lru" in result.detail and "noeviction" in (result.fix or "")


async def test_rediss_validates_the_servers_certificate(tmp_path: Path) -> None:
    import socket

    import trustme

    ca, stranger = trustme.CA(), trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    for name, pem in (("cert.pem", cert.cert_chain_pems[0]), ("key.pem", cert.private_key_pem)):
        pem.write_to_path(str(tmp_path / name))
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    stranger.cert_pem.write_to_path(str(tmp_path / "stranger.pem"))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        tls_port = s.getsockname()[1]
    server = PrivateRedis(
        tmp_path, "--tls-port", str(tls_port), "--tls-cert-file", str(tmp_path / "cert.pem"),
        "--tls-key-file", str(tmp_path / "key.pem"), "--tls-auth-clients", "no",
    )  # fmt: skip
    await server.start()
    try:
        trusted = connect(f"rediss://127.0.0.1:{tls_port}/0?ssl_ca_certs={tmp_path / 'ca.pem'}")
        assert await trusted.ping()
        await trusted.aclose()
        store = RedisApprovalStore(connect(f"rediss://127.0.0.1:{tls_port}/0?ssl_ca_certs={tmp_path / 'stranger.pem'}"))
        with pytest.raises(StoreUnavailable):
            await store.get("0123456789")  # a certificate its CA did not sign: no connection
        await store.close()
    finally:
        await server.stop()
