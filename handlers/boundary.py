"""The error boundary every Slack listener runs inside: acknowledge, and answer every failure.

Two tiers, as in errbot: a ``KerberosBotError`` is shown to the user as its ``user_message``;
anything else is logged with its traceback and the user gets a short reply with a reference to
find it in the log. Either way Slack gets its acknowledgement within the 3 seconds (Bolt would
otherwise answer 500, or nothing at all, and the person who clicked sees nothing happen).

Where the answer goes: a slash command not yet acknowledged gets it in the acknowledgement; a view
submission gets its modal replaced by the message; a click gets an ephemeral message in its
channel (or through its response URL where there is no channel, or a direct message where there is
neither: the home page, a shortcut).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_bolt.response import BoltResponse
from slack_sdk.web.async_client import AsyncWebClient

from bot.domain.errors import KerberosBotError
from handlers.notices.direct import direct_message
from handlers.replies import Reply, escape
from handlers.views.modals import message_modal

log = logging.getLogger(__name__)


class OnceAck:
    """``ack`` that acknowledges once: the listener's own call wins, the boundary's is a no-op after it."""

    def __init__(self, ack: AsyncAck, sent: asyncio.Future[None] | None = None) -> None:
        self._ack = ack
        self.done = False
        self._sent = sent  # resolved once Bolt holds the acknowledgement to answer Slack with

    async def __call__(self, **kwargs: Any) -> None:
        if self.done:
            return
        self.done = True
        try:
            await self._ack(**kwargs)
        finally:
            _resolve(self._sent)

    async def send(self, reply: Reply) -> None:
        """The acknowledgement with ``reply`` as its body, as JSON serialised once per reply (``Reply.json_text``):
        Bolt's ``ack(**payload)`` would copy, convert and serialise the same body again for every request."""
        if self.done:
            return
        self.done = True
        try:
            self._ack.response = BoltResponse(status=200, body=reply.json_text)
        finally:
            _resolve(self._sent)


async def acknowledge(ack: Ack, reply: Reply | None) -> None:
    """Acknowledge with ``reply`` as the body (None: an empty acknowledgement)."""
    if reply is None:
        await ack()
    elif isinstance(ack, OnceAck):
        await ack.send(reply)
    else:
        await ack(**reply.payload())


def _resolve(future: asyncio.Future[None] | None) -> None:
    if future is not None and not future.done():
        future.set_result(None)


Ack = Callable[..., Awaitable[None]]  # Bolt's AsyncAck or the boundary's OnceAck
GuardedListener = Callable[[OnceAck, dict[str, Any], AsyncWebClient], Awaitable[None]]
BoltListener = Callable[..., Awaitable[None]]


def internal_error_text(where: str) -> str:
    """Log the exception being handled with a fresh reference; the text names only the reference."""
    ref = uuid.uuid4().hex[:8]
    log.exception("unexpected error in %s (ref %s)", where, ref)
    return f"Something went wrong inside kerberos-bot (reference {ref}); an admin can find it in the log."


def _id_of(body: dict[str, Any], key: str) -> str | None:
    value = body.get(key)
    if isinstance(value, dict) and isinstance(value.get("id"), str):
        return str(value["id"])
    return None


async def answer(ack: OnceAck, body: dict[str, Any], client: AsyncWebClient | None, text: str) -> None:
    """Tell the person behind ``body`` what happened, wherever this kind of request can be answered."""
    if not ack.done:
        if body.get("type") == "view_submission":
            await ack(response_action="update", view=message_modal(text))
            return
        if "command" in body:
            await ack(text=f":warning: {escape(text)}", response_type="ephemeral")
            return
        await ack()
    user = _id_of(body, "user") or (str(body["user_id"]) if isinstance(body.get("user_id"), str) else None)
    channel = _id_of(body, "channel") or (str(body["channel_id"]) if isinstance(body.get("channel_id"), str) else None)
    try:
        if client is not None and user and channel:
            await client.chat_postEphemeral(channel=channel, user=user, text=f":warning: {escape(text)}")
        elif isinstance(body.get("response_url"), str):
            await AsyncRespond(response_url=body["response_url"])(
                text=f":warning: {escape(text)}", response_type="ephemeral", replace_original=False
            )
        elif client is not None and user:  # a click on the home page, a shortcut: no channel to answer in
            await direct_message(client, user, f":warning: {escape(text)}")
        else:
            log.warning("no way to answer %s: %s", body.get("type", "a request"), text)
    except Exception:
        log.exception("could not tell the user: %s", text)


class InFlight:
    """The listeners still at work after their acknowledgement (Bolt runs them on after it answered Slack):
    the bot lets them finish before it closes its connections, so a click in flight at shutdown is still
    carried through and answered."""

    def __init__(self) -> None:
        self.count = 0

    async def drain(self, timeout: float = 10.0) -> bool:
        """Wait (at most ``timeout`` seconds) until no listener is at work; False if some still are."""
        deadline = time.monotonic() + timeout
        # polled, not an asyncio.Event: listeners of bots on other event loops share this count in the tests
        while self.count and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.02)
        return not self.count


IN_FLIGHT = InFlight()


_CARRIED_ON: set[asyncio.Task[None]] = set()  # listeners at work after their acknowledgement (kept from the GC)


def guard(where: str, listener: GuardedListener) -> BoltListener:
    """Wrap ``listener`` (given ``ack``, ``body``, ``client``) in the boundary; returns Bolt's listener.

    The app runs with ``process_before_response=True``, so Bolt answers Slack as soon as this returns:
    it returns the moment the listener acknowledges (or ends), and the listener carries on in a task of
    its own. Bolt's other mode does the same but looks for the acknowledgement every 10 ms, which is
    most of an acknowledgement's time."""

    async def carried_through(once: OnceAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        try:
            await listener(once, body, client)
        except KerberosBotError as exc:
            log.info("%s refused: %s", where, exc.user_message)
            await answer(once, body, client, exc.user_message)
        except Exception:
            await answer(once, body, client, internal_error_text(where))
        finally:
            IN_FLIGHT.count -= 1
            await once()

    async def guarded(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        returned = asyncio.get_running_loop().create_future()  # the acknowledgement, or the listener's end
        once = OnceAck(ack, returned)
        IN_FLIGHT.count += 1
        task = asyncio.create_task(carried_through(once, body, client))
        _CARRIED_ON.add(task)
        task.add_done_callback(_CARRIED_ON.discard)
        task.add_done_callback(lambda _: _resolve(returned))
        await returned

    # the listener's own name for Bolt's logs and the manifest test; not functools.wraps, whose
    # __wrapped__ would make Bolt inject arguments by the inner signature
    guarded.__name__ = guarded.__qualname__ = getattr(listener, "__name__", "listener")
    return guarded


def register_last_resort(app: AsyncApp) -> None:
    """Errors outside any guarded listener (Bolt's middleware): logged, acknowledged, never a 500."""

    async def on_error(error: Exception, body: dict[str, Any], response: BoltResponse | None) -> None:
        ref = uuid.uuid4().hex[:8]
        log.error("unhandled error in Bolt (ref %s)", ref, exc_info=error)
        if response is not None:
            response.status = 200
            response.body = ""

    app.error(on_error)
