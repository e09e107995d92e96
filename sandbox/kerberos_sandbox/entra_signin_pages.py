"""The browser side of the Entra stand-in: the authorization endpoint's sign-in pages and the
authorization-code redemption of the token endpoint (OAuth 2.0 with PKCE, OpenID Connect).

    GET  /{tenant}/oauth2/v2.0/authorize   checks the app and its redirect URI, then shows the sign-in
                                            form (or, with a single sign-on cookie and no prompt=login,
                                            redirects at once with the earlier sign-in's auth_time)
    POST /{tenant}/oauth2/v2.0/login       user name and password (or Cancel: error=access_denied)
    POST /{tenant}/oauth2/v2.0/mfa         the one-time code of the MFA step
    POST /{tenant}/oauth2/v2.0/token       grant_type=authorization_code: the code once, with its
                                            redirect URI and the PKCE verifier

Errors follow the identity platform: an unknown app or redirect URI is shown on the page and never
redirected (AADSTS700016, AADSTS50011); a code redeemed twice is AADSTS54005, a verifier that does not
match AADSTS501481, an expired code AADSTS70008.
"""

from __future__ import annotations

import html
import json
import secrets
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from kerberos_sandbox.entra_people import (
    SANDBOX_MFA_CODE,
    AuthorizationRequest,
    BrowserSession,
    EntraPeople,
    StandInUser,
    pkce_challenge,
)

SESSION_COOKIE = "standin_sso"
ErrorResponse = Callable[[int, str, int | None, str], web.Response]
TokenMinter = Callable[[StandInUser, str, dict[str, Any]], dict[str, Any]]

_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:28rem;margin:3rem auto;padding:0 1rem;line-height:1.5}"
    "label{display:block;margin-top:1rem}input{width:100%;padding:.4rem;font-size:1rem}"
    "button{margin-top:1rem;padding:.5rem 1rem;font-size:1rem}.error{color:#a4262c}"
)


def _page(title: str, body: str, status: int = 200) -> web.Response:
    text = (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f'<meta name="viewport" content="width=device-width, initial-scale=1"><style>{_STYLE}</style></head>'
        f"<body><main><h1>{html.escape(title)}</h1>{body}</main></body></html>"
    )
    return web.Response(text=text, status=status, content_type="text/html", headers={"Cache-Control": "no-store"})


def _wanted_acrs(claims: str) -> tuple[str, ...]:
    """The authentication context values of a ``claims`` request ({"id_token": {"acrs": ...}})."""
    try:
        parsed = json.loads(claims) if claims else {}
    except ValueError:
        return ()
    found: list[str] = []
    for part in ("id_token", "access_token"):
        acrs = (parsed.get(part) or {}).get("acrs") if isinstance(parsed, dict) else None
        if isinstance(acrs, dict):
            values = acrs.get("values") or ([acrs["value"]] if "value" in acrs else [])
            found += [str(v) for v in values]
    return tuple(dict.fromkeys(found))


class SignInPages:
    def __init__(
        self,
        people: EntraPeople,
        *,
        known_tenant: Callable[[str], bool],
        client_id: Callable[[], str],
        client_secret: Callable[[], str | None],
        error: ErrorResponse,
        mint: TokenMinter,
    ) -> None:
        self.people = people
        self._known_tenant = known_tenant
        self._client_id = client_id
        self._client_secret = client_secret
        self._error = error
        self._mint = mint

    def routes(self, tenant_path: str) -> list[web.RouteDef]:
        return [
            web.get(tenant_path + "/oauth2/v2.0/authorize", self.authorize),
            web.post(tenant_path + "/oauth2/v2.0/login", self.login),
            web.post(tenant_path + "/oauth2/v2.0/mfa", self.mfa),
        ]

    # -- pages ------------------------------------------------------------------------------------
    def _form(self, tenant: str, authorization: AuthorizationRequest, problem: str = "") -> web.Response:
        error = f'<p id="error" class="error" role="alert">{html.escape(problem)}</p>' if problem else ""
        hint = html.escape(authorization.login_hint)
        body = (
            f"<p>Sign in to continue to the app <code>{html.escape(authorization.client_id)}</code>.</p>{error}"
            f'<form method="post" action="/{html.escape(tenant)}/oauth2/v2.0/login">'
            f'<input type="hidden" name="request" value="{html.escape(authorization.request_id)}">'
            f'<label for="username">Email or user name</label>'
            f'<input id="username" name="username" autocomplete="username" value="{hint}" required>'
            f'<label for="password">Password</label>'
            f'<input id="password" name="password" type="password" autocomplete="current-password">'
            f'<button id="next" type="submit" name="action" value="sign-in">Sign in</button> '
            f'<button id="decline" type="submit" name="action" value="cancel" formnovalidate>Cancel</button>'
            "</form>"
        )
        return _page("Sign in", body)

    def _mfa_form(self, tenant: str, authorization: AuthorizationRequest, problem: str = "") -> web.Response:
        error = f'<p id="error" class="error" role="alert">{html.escape(problem)}</p>' if problem else ""
        body = (
            f"<p>Enter the code from your authenticator app (the stand-in accepts {SANDBOX_MFA_CODE}).</p>{error}"
            f'<form method="post" action="/{html.escape(tenant)}/oauth2/v2.0/mfa">'
            f'<input type="hidden" name="request" value="{html.escape(authorization.request_id)}">'
            '<label for="otc">Code</label>'
            '<input id="otc" name="otc" inputmode="numeric" autocomplete="one-time-code" required>'
            '<button id="verify" type="submit">Verify</button></form>'
        )
        return _page("Verify your identity", body)

    def _back(self, authorization: AuthorizationRequest, params: dict[str, str], cookie: str = "") -> web.Response:
        """Back to the app's redirect URI with the code (or the error) and the app's state: a 302 with
        a query, or (response_mode=form_post) a page whose form the browser posts there at once."""
        answer = {**params, "state": authorization.state}
        response: web.Response
        if authorization.response_mode == "form_post":
            fields = "".join(
                f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">' for k, v in answer.items()
            )
            page = (
                '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Working...</title></head>'
                f'<body onload="document.forms[0].submit()"><form method="post" id="answer" '
                f'action="{html.escape(authorization.redirect_uri)}">{fields}'
                '<noscript><p>Script is disabled. Click Continue.</p><button type="submit">Continue</button></noscript>'
                "</form></body></html>"
            )
            response = web.Response(text=page, content_type="text/html", headers={"Cache-Control": "no-store"})
        else:
            response = web.HTTPFound(f"{authorization.redirect_uri}?{urlencode(answer)}")
        if cookie:
            response.set_cookie(SESSION_COOKIE, cookie, secure=True, httponly=True, samesite="None")
        return response

    def _finish(self, authorization: AuthorizationRequest, session: BrowserSession, *, new: bool) -> web.Response:
        code = self.people.issue_code(authorization, session)
        params = {"code": code.code, "session_state": session.session_id[:12]}
        return self._back(authorization, params, cookie=session.session_id if new else "")

    def _pending(self, form: Any) -> AuthorizationRequest | None:
        authorization = self.people.authorizations.get(str(form.get("request") or ""))
        if authorization is None or time.time() - authorization.created_at > self.people.code_lifetime:
            return None
        return authorization

    async def authorize(self, request: web.Request) -> web.Response:
        tenant = request.match_info["tenant"]
        query = request.query
        if not self._known_tenant(tenant):
            return _page("Sign in failed", f"<p>AADSTS90002: Tenant '{html.escape(tenant)}' not found.</p>", 400)
        client_id = query.get("client_id", "")
        if client_id != self._client_id():
            return _page(
                "Sign in failed",
                f"<p>AADSTS700016: Application with identifier '{html.escape(client_id)}' was not found in the "
                "directory.</p>",
                400,
            )
        redirect_uri = query.get("redirect_uri", "")
        if redirect_uri not in self.people.redirect_uris:
            return _page(
                "Sign in failed",
                f"<p>AADSTS50011: The redirect URI '{html.escape(redirect_uri)}' specified in the request does not "
                "match the redirect URIs configured for the application.</p>",
                400,
            )
        authorization = AuthorizationRequest(
            request_id=secrets.token_urlsafe(16),
            client_id=client_id,
            redirect_uri=redirect_uri,
            scope=query.get("scope", ""),
            state=query.get("state", ""),
            nonce=query.get("nonce", ""),
            code_challenge=query.get("code_challenge", ""),
            login_hint=query.get("login_hint", ""),
            prompt=query.get("prompt", ""),
            max_age=int(query["max_age"]) if query.get("max_age", "").isdigit() else None,
            wants_acrs=_wanted_acrs(query.get("claims", "")),
            response_mode="form_post" if query.get("response_mode") == "form_post" else "query",
        )
        if query.get("response_type") != "code":
            return self._back(
                authorization, {"error": "unsupported_response_type", "error_description": "AADSTS700054"}
            )
        if not authorization.code_challenge or query.get("code_challenge_method") != "S256":
            return self._back(
                authorization,
                {
                    "error": "invalid_request",
                    "error_description": "AADSTS9002325: Proof Key for Code Exchange is "
                    "required (code_challenge with code_challenge_method=S256).",
                },
            )
        self.people.authorizations[authorization.request_id] = authorization
        session = self.people.sessions.get(request.cookies.get(SESSION_COOKIE, ""))
        forced = authorization.prompt == "login" and self.people.honour_prompt_login
        too_old = (
            session is not None
            and authorization.max_age is not None
            and self.people.honour_prompt_login
            and time.time() - session.auth_time > authorization.max_age
        )
        if session is not None and not forced and not too_old:
            return self._finish(authorization, session, new=False)  # single sign-on: no page at all
        return self._form(tenant, authorization)

    async def login(self, request: web.Request) -> web.Response:
        tenant = request.match_info["tenant"]
        form = await request.post()
        authorization = self._pending(form)
        if authorization is None:
            return _page("Sign in failed", "<p>AADSTS50058: this sign-in page has expired; start again.</p>", 400)
        if form.get("action") == "cancel":
            self.people.authorizations.pop(authorization.request_id, None)
            return self._back(
                authorization,
                {"error": "access_denied", "error_description": "AADSTS65004: User declined to consent or cancelled."},
            )
        user = self.people.user(str(form.get("username") or ""))
        if user is None or not secrets.compare_digest(str(form.get("password") or ""), user.password):
            return self._form(tenant, authorization, "Your account or password is incorrect.")
        authorization.user = user
        if not user.mfa_registered:
            return self._sign_in(authorization, user, mfa=False)
        return self._mfa_form(tenant, authorization)

    async def mfa(self, request: web.Request) -> web.Response:
        tenant = request.match_info["tenant"]
        form = await request.post()
        authorization = self._pending(form)
        if authorization is None or authorization.user is None:
            return _page("Sign in failed", "<p>AADSTS50058: this sign-in page has expired; start again.</p>", 400)
        if str(form.get("otc") or "").strip() != SANDBOX_MFA_CODE:
            return self._mfa_form(tenant, authorization, "That code didn't work. Check the code and try again.")
        return self._sign_in(authorization, authorization.user, mfa=True)

    def _sign_in(self, authorization: AuthorizationRequest, user: StandInUser, *, mfa: bool) -> web.Response:
        return self._finish(authorization, self.people.new_session(user, mfa=mfa), new=True)

    # -- token endpoint: grant_type=authorization_code --------------------------------------------
    def redeem(self, form: Any) -> web.Response:
        client_id = str(form.get("client_id") or "")
        if client_id != self._client_id():
            return self._error(400, "unauthorized_client", 700016, f"Application '{client_id}' was not found.")
        secret = self._client_secret()
        if secret is not None and not secrets.compare_digest(str(form.get("client_secret") or ""), secret):
            return self._error(401, "invalid_client", 7000215, "Invalid client secret provided.")
        code = self.people.codes.get(str(form.get("code") or ""))
        if code is None or code.client_id != client_id:
            return self._error(400, "invalid_grant", 70000, "The provided authorization code is not valid.")
        if code.redeemed:
            return self._error(400, "invalid_grant", 54005, "OAuth2 Authorization code was already redeemed.")
        if time.time() > code.expires_at:
            return self._error(400, "invalid_grant", 70008, "The provided authorization code has expired.")
        if str(form.get("redirect_uri") or "") != code.redirect_uri:
            return self._error(
                400, "invalid_grant", 50011, "The reply URL in the request does not match the one the code was for."
            )
        if not secrets.compare_digest(pkce_challenge(str(form.get("code_verifier") or "")), code.code_challenge):
            return self._error(
                400,
                "invalid_grant",
                501481,
                "The Code_Verifier does not match the code_challenge supplied in the authorization request.",
            )
        code.redeemed = True
        extra: dict[str, Any] = {
            "nonce": code.nonce,
            "auth_time": int(code.auth_time),
            "amr": ["pwd", "mfa"] if code.mfa else ["pwd"],
        }
        if code.acrs:
            extra["acrs"] = list(code.acrs)
        return web.json_response(self._mint(code.user, code.scope, extra))
