"""The demo console's approver at the Entra sign-in page: what the bot asked each person to sign in with
(a link, or a device code), and the steps a person takes there."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from kerberos_sandbox.entra_people import SANDBOX_PASSWORD
from kerberos_sandbox.sandbox import Sandbox
from kerberos_sandbox.sign_in_client import SignInWalker

_DEVICE_CODE = re.compile(r"with the code (\w+)")


def _option(args: list[str], flag: str, default: str) -> str:
    return args[args.index(flag) + 1] if flag in args[:-1] else default


DEVICE_CODE_SETTLE = 2.5  # seconds: msal polls every second, then the bot records the approval
BROWSER_SETTLE = 1.0  # seconds: the bot's page has answered; the card follows


class SignInPlayer:
    """Plays ``signin`` and ``decline`` for whoever the console is. :meth:`play` answers how long the bot
    carries on after it outside a listener (None when nothing was done at the page)."""

    def __init__(self, box: Sandbox, say: Callable[[str], None]) -> None:
        self._box = box
        self._say = say
        self._codes: dict[str, str] = {}  # Slack user -> the device code the bot showed them
        self._links: dict[str, str] = {}  # Slack user -> the sign-in link the bot gave them
        self._browsers: dict[str, SignInWalker] = {}  # one browser (cookies) per person

    def note_asked(self, user: str, text: str, blocks: list[dict[str, Any]]) -> None:
        """What an ephemeral message from the bot asked ``user`` to sign in with, if anything."""
        code = _DEVICE_CODE.search(text)
        if code:
            self._codes[user] = code.group(1)
        for block in blocks:
            url = (block.get("accessory") or {}).get("url")
            if url:
                self._links[user] = str(url)

    async def play(self, name: str, user: str, word: str, args: list[str]) -> float | None:
        link = self._links.pop(user, None)
        if link is not None:
            await self._in_the_browser(name, link, word, args)
            return BROWSER_SETTLE
        code = self._codes.pop(user, None)
        if code is None:
            self._say("(the bot has not asked you to sign in; click Approve on a request that needs it)")
            return None
        people = self._box.entra.people
        try:
            if word == "decline":
                self._say(f"\n@{name} declines the sign-in for code {code}")
                people.decline(code)
            else:
                upn = _option(args, "--as", f"{name}@contoso.test")
                mfa = "--no-mfa" not in args
                self._say(f"\n@{name} signs in at the Entra page as {upn} ({'with' if mfa else 'without'} MFA)")
                people.sign_in(code, upn, mfa=mfa)
        except KeyError as exc:
            self._say(f"({exc.args[0]})")
            return None
        return DEVICE_CODE_SETTLE

    async def _in_the_browser(self, name: str, link: str, word: str, args: list[str]) -> None:
        upn = _option(args, "--as", f"{name}@contoso.test")
        password = _option(args, "--password", SANDBOX_PASSWORD)
        mfa = "--no-mfa" not in args
        walker = self._browsers.setdefault(name, SignInWalker(self._box.entra.ca_file))
        account = self._box.entra.people.user(upn)
        registered = account.mfa_registered if account else True
        if account is not None:
            account.mfa_registered = mfa  # --no-mfa: an account with no MFA method, so the page asks for none
        try:
            if word == "decline":
                self._say(f"\n@{name} opens the sign-in link and clicks Cancel")
                landed = await walker.sign_in(link, upn, cancel=True)
            else:
                how = "password and MFA code" if mfa else "password only"
                self._say(f"\n@{name} opens the sign-in link and signs in as {upn} ({how})")
                landed = await walker.sign_in(link, upn, password=password)
        finally:
            if account is not None:
                account.mfa_registered = registered
        self._say(f"--- the browser shows: {landed.title} ---\n{landed.text}")
