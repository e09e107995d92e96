"""The approval path on the real Redis: round trips per click, clicks per second, double executions.

Runs T trials; in each, 20 approvers click Approve on one request at the same moment, then three
workers try to claim it. A double execution is a request claimed more than once (goal: 0).

usage: python -m bench.approvals [--trials 1000] [--clicks 20] [--redis redis://127.0.0.1:6379/0]
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta

from bot.adapters.redis.client import connect
from bot.adapters.redis.store import RedisApprovalStore
from bot.domain.approvals import Action, ChangeRequest, RequestState, Verdict


async def main(trials: int, clicks: int, url: str) -> None:
    prefix = f"kbot-bench-{uuid.uuid4().hex[:8]}"
    store = RedisApprovalStore(connect(url), prefix)
    doubles = approved = 0
    click_seconds = 0.0
    click_trips = 0
    durable_seconds, durable_count, durable_how = 0.0, 0, ""
    try:
        for trial in range(trials):
            now = datetime.now(UTC)
            request = ChangeRequest(
                id=f"t{trial}",
                action=Action.ROTATE,
                domain="contoso.test",
                requester="U0ALICE",
                reason="bench",
                plan=(),
                created_at=now,
                expires_at=now + timedelta(hours=1),
                approvals_required=1 + trial % 2,
            )
            await store.create(request)
            before = store.round_trips
            started = time.perf_counter()
            results = await asyncio.gather(*(store.approve(request.id, f"U{i}", now) for i in range(clicks)))
            click_seconds += time.perf_counter() - started
            click_trips += store.round_trips - before
            approved += sum(r.verdict == Verdict.APPROVED for r in results)
            lease = timedelta(seconds=30)
            claims = await asyncio.gather(*(store.claim_next(f"worker-{w}", lease, now) for w in range(3)))
            doubles += max(0, sum(c is not None for c in claims) - 1)
            for claim in claims:
                if claim is not None:
                    started = time.perf_counter()
                    durable_how = await store.make_durable(claim)
                    durable_seconds += time.perf_counter() - started
                    durable_count += 1
                    await store.finish(claim, RequestState.SUCCEEDED, "bench", now)
    finally:
        client = connect(url)
        async for key in client.scan_iter(match=f"{prefix}:*", count=1000):
            await client.delete(key)
        await client.aclose()
        await store.close()
    total_clicks = trials * clicks
    print(f"{trials} trials of {clicks} concurrent Approve clicks on the real Redis ({url})")
    print(
        f"Redis round trips per click: {click_trips / total_clicks:.2f} (one Lua script that checks, changes "
        "and returns the request for the card)"
    )
    print(f"clicks per second sustained: {total_clicks / click_seconds:,.0f}")
    print(f"requests approved: {approved} of {trials}; double executions: {doubles} (goal: 0)")
    print(
        f"durability step at each claim (never on a click): {durable_seconds / max(1, durable_count) * 1000:.2f} ms "
        f"({durable_how})"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=1000)
    parser.add_argument("--clicks", type=int, default=20)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    args = parser.parse_args()
    asyncio.run(main(args.trials, args.clicks, args.redis))
