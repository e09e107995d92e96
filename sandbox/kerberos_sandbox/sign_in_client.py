"""Walk the browser sign-in without a browser: the demo console's ``signin`` (tests use Chromium).

Follows what a browser does with the stand-in's pages: open the link the bot gave, post the user
name and password, then the MFA code (or Cancel), follow the redirect back to the bot's callback,
confirm the approval on the bot's page (or say "This is not mine"), and return the page the bot shows
then. Cookies are kept per walker, like one browser profile.
"""

from __future__ import annotations

import html
import re
import ssl
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urljoin

import aiohttp

from kerberos_sandbox.entra_people import SANDBOX_MFA_CODE, SANDBOX_PASSWORD

_ANSWER = '<form method="post" id="answer"'  # the identity platform's form_post page
_CONFIRM = re.compile(r'<form method="post" action="([^"]+)"><input type="hidden" name="token" value="([^"]+)">')


@dataclass(frozen=True)
class Landed:
    url: str  # where the walk ended: the bot's callback, or a stand-in page that stopped it
    status: int
    title: str
    text: str  # the page's text, tags removed
    answer: dict[str, str] | None = None  # deliver=False: what the browser would have posted to the bot


def _text(page: str) -> str:
    without = re.sub(r"<(head|style|script)[^>]*>.*?</\1>", " ", page, flags=re.S)
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", without))).strip()


def _title(page: str) -> str:
    found = re.search(r"<title>(.*?)</title>", page, re.S)
    return html.unescape(found.group(1)).strip() if found else ""


def _form(page: str) -> tuple[str, str] | None:
    """(action, hidden request id) of the page's form, if it has one."""
    action = re.search(r'<form method="post" action="([^"]+)"', page)
    request = re.search(r'name="request" value="([^"]+)"', page)
    if not action or not request:
        return None
    return html.unescape(action.group(1)), html.unescape(request.group(1))


class SignInWalker:
    def __init__(self, ca_file: Path) -> None:
        self._ssl = ssl.create_default_context(cafile=str(ca_file))
        self._jar = aiohttp.CookieJar(unsafe=True)  # the stand-in is an IP address

    async def _follow(
        self,
        session: aiohttp.ClientSession,
        response: aiohttp.ClientResponse,
        deliver: bool = True,
        decision: str | None = "approve",
    ) -> Landed:
        """Redirects, and the form_post page's form (a browser submits it on load; ``deliver=False``
        keeps it, for a test to post, alter or replay)."""
        while True:
            if response.status in (301, 302, 303, 307):
                target = urljoin(str(response.url), response.headers["Location"])
                response = await session.get(target, allow_redirects=False, ssl=self._ssl)
                continue
            page = await response.text()
            posted = re.search(_ANSWER + r' action="([^"]+)">', page)
            confirm = _CONFIRM.search(page)
            if confirm is not None and decision is not None:  # the bot asks: approve, or not mine
                target = urljoin(str(response.url), html.unescape(confirm.group(1)))
                fields = {"token": html.unescape(confirm.group(2)), "decision": decision}
                response = await session.post(target, data=fields, allow_redirects=False, ssl=self._ssl)
                continue
            if posted is None:
                return Landed(str(response.url), response.status, _title(page), _text(page))
            fields = {
                html.unescape(k): html.unescape(v)
                for k, v in re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', page)
            }
            target = urljoin(str(response.url), html.unescape(posted.group(1)))
            if not deliver:
                return Landed(target, response.status, _title(page), _text(page), fields)
            response = await session.post(target, data=fields, allow_redirects=False, ssl=self._ssl)

    async def sign_in(
        self,
        link: str,
        upn: str,
        *,
        password: str = SANDBOX_PASSWORD,
        mfa_code: str = SANDBOX_MFA_CODE,
        cancel: bool = False,
        deliver: bool = True,
        decision: str | None = "approve",
    ) -> Landed:
        """``decision``: what to answer on the bot's page ("approve", "decline" for "This is not mine", or
        None to stop there and return that page)."""
        async with aiohttp.ClientSession(cookie_jar=self._jar) as session:
            response = await session.get(link, allow_redirects=False, ssl=self._ssl)
            page = await response.text()
            if response.status != 200 or _ANSWER in page:  # single sign-on (an answer at once), or an error
                return await self._follow(session, response, deliver, decision)
            form = _form(page)
            if form is None:
                return Landed(str(response.url), response.status, _title(page), _text(page))
            action, request_id = form
            fields = {"request": request_id, "username": upn, "password": password}
            fields["action"] = "cancel" if cancel else "sign-in"
            response = await session.post(urljoin(link, action), data=fields, allow_redirects=False, ssl=self._ssl)
            page = await response.text()
            if response.status != 200 or _ANSWER in page:
                return await self._follow(session, response, deliver, decision)
            form = _form(page)
            if form is None or "otc" not in page:  # the password was refused: the form again, with the error
                return Landed(str(response.url), response.status, _title(page), _text(page))
            action, request_id = form
            response = await session.post(
                urljoin(link, action),
                data={"request": request_id, "otc": mfa_code},
                allow_redirects=False,
                ssl=self._ssl,
            )
            return await self._follow(session, response, deliver, decision)
