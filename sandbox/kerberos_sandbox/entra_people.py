"""The people side of the Entra stand-in: users, (nested) groups, device-code sign-ins, and the
browser sign-ins of the authorization code flow (sessions, authorization requests, codes).

Kept apart from the HTTP layer (``entra_standin``) so tests and the demo console can drive it in
process: create users and groups, then complete, decline or let expire the sign-in a bot started.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import string
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field

SANDBOX_PASSWORD = "correct horse battery staple"  # every stand-in user's password unless told otherwise
SANDBOX_MFA_CODE = "123456"  # the one-time code the stand-in's MFA step accepts


@dataclass
class StandInUser:
    object_id: str
    upn: str
    mail: str | None
    display_name: str
    password: str = SANDBOX_PASSWORD
    mfa_registered: bool = True  # False: the browser sign-in ends after the password (amr: pwd)


@dataclass
class BrowserSession:
    """The stand-in's single sign-on cookie: who signed in in this browser, when, and how."""

    session_id: str
    user: StandInUser
    auth_time: float  # time.time() of the last interactive sign-in
    mfa: bool


@dataclass
class AuthorizationRequest:
    """One visit to /authorize, between the form and the redirect back with a code."""

    request_id: str
    client_id: str
    redirect_uri: str
    scope: str
    state: str
    nonce: str
    code_challenge: str
    login_hint: str
    prompt: str
    max_age: int | None
    wants_acrs: tuple[str, ...]  # authentication context values asked for in ``claims``
    response_mode: str = "query"  # or form_post: the answer is POSTed to the redirect URI by the page
    user: StandInUser | None = None  # set once the password was right
    created_at: float = field(default_factory=time.time)


@dataclass
class AuthorizationCode:
    code: str
    client_id: str
    redirect_uri: str
    scope: str
    nonce: str
    code_challenge: str
    user: StandInUser
    auth_time: float
    mfa: bool
    acrs: tuple[str, ...]
    expires_at: float
    redeemed: bool = False


def pkce_challenge(verifier: str) -> str:
    """S256: BASE64URL(SHA256(code_verifier)) without padding (RFC 7636 4.2)."""
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode("ascii")).digest()).decode().rstrip("=")


@dataclass
class DeviceCodeGrant:
    device_code: str
    user_code: str
    client_id: str
    scope: str
    expires_at: float  # time.time()
    interval: int
    outcome: str = "pending"  # pending, signed_in, or an OAuth error: access_denied, authorization_declined
    user: StandInUser | None = None
    mfa: bool = False
    redeemed: bool = False  # a device code gives tokens once
    polls: int = 0


def _user_code() -> str:
    letters = string.ascii_uppercase.replace("O", "").replace("I", "")
    return "".join(secrets.choice(letters) for _ in range(9))


@dataclass
class EntraPeople:
    users: dict[str, StandInUser] = field(default_factory=dict)  # by object id
    groups: dict[str, set[str]] = field(default_factory=dict)  # group id -> member object ids (users or groups)
    group_names: dict[str, str] = field(default_factory=dict)
    grants: dict[str, DeviceCodeGrant] = field(default_factory=dict)  # by device code
    device_code_lifetime: int = 900  # seconds, as Entra gives
    device_code_interval: int = 5
    # browser sign-ins (authorization code flow with PKCE)
    redirect_uris: set[str] = field(default_factory=set)  # registered for the approvers' app
    sessions: dict[str, BrowserSession] = field(default_factory=dict)  # by cookie value
    authorizations: dict[str, AuthorizationRequest] = field(default_factory=dict)
    codes: dict[str, AuthorizationCode] = field(default_factory=dict)
    code_lifetime: int = 600  # seconds an authorization code can be redeemed, as Entra gives
    # Knobs for tests: a tenant whose single sign-on ignores prompt=login, and sign-ins dated earlier
    # than they happened (an old session's auth_time).
    honour_prompt_login: bool = True
    auth_time_shift: float = 0.0

    # -- directory -------------------------------------------------------------------------------
    def add_user(
        self, upn: str, *, mail: str | None = None, display_name: str | None = None, object_id: str | None = None
    ) -> StandInUser:
        user = StandInUser(object_id or str(uuid.uuid4()), upn, mail or upn, display_name or upn.split("@")[0])
        self.users[user.object_id] = user
        return user

    def user(self, id_or_upn: str) -> StandInUser | None:
        wanted = id_or_upn.lower()
        return self.users.get(id_or_upn) or next((u for u in self.users.values() if u.upn.lower() == wanted), None)

    def add_group(self, name: str, members: Iterable[str] = (), *, group_id: str | None = None) -> str:
        """A security group; ``members`` are user object ids or group ids (nesting)."""
        gid = group_id or str(uuid.uuid4())
        self.groups[gid] = set(members)
        self.group_names[gid] = name
        return gid

    def add_member(self, group_id: str, member_id: str) -> None:
        self.groups[group_id].add(member_id)

    def transitive_groups(self, object_id: str) -> set[str]:
        found: set[str] = set()
        frontier = {object_id}
        while frontier:
            parents = {g for g, members in self.groups.items() if members & frontier} - found
            found |= parents
            frontier = parents
        return found

    # -- device-code sign-in ---------------------------------------------------------------------
    def start_grant(self, client_id: str, scope: str) -> DeviceCodeGrant:
        grant = DeviceCodeGrant(
            device_code=secrets.token_urlsafe(48),
            user_code=_user_code(),
            client_id=client_id,
            scope=scope,
            expires_at=time.time() + self.device_code_lifetime,
            interval=self.device_code_interval,
        )
        self.grants[grant.device_code] = grant
        return grant

    def grant_by_user_code(self, user_code: str) -> DeviceCodeGrant:
        wanted = user_code.replace("-", "").strip().upper()
        for grant in self.grants.values():
            if grant.user_code == wanted:
                return grant
        raise KeyError(f"no sign-in waits for code {user_code}")

    def pending_user_codes(self) -> list[str]:
        now = time.time()
        return [g.user_code for g in self.grants.values() if g.outcome == "pending" and g.expires_at > now]

    def sign_in(self, user_code: str, upn: str, *, mfa: bool = True) -> None:
        """The user opened the verification page, typed the code and signed in (with MFA or not)."""
        grant = self.grant_by_user_code(user_code)
        user = self.user(upn)
        if user is None:
            raise KeyError(f"no user {upn} in the stand-in's directory")
        grant.outcome, grant.user, grant.mfa = "signed_in", user, mfa

    def decline(self, user_code: str, error: str = "access_denied") -> None:
        """The user declined, or Conditional Access blocked the sign-in."""
        self.grant_by_user_code(user_code).outcome = error

    def expire(self, user_code: str) -> None:
        self.grant_by_user_code(user_code).expires_at = 0

    # -- browser sign-in (authorization code flow) -------------------------------------------------
    def issue_code(self, authorization: AuthorizationRequest, session: BrowserSession) -> AuthorizationCode:
        acrs = authorization.wants_acrs if session.mfa else ()  # an authentication context here means MFA
        code = AuthorizationCode(
            code=secrets.token_urlsafe(48),
            client_id=authorization.client_id,
            redirect_uri=authorization.redirect_uri,
            scope=authorization.scope,
            nonce=authorization.nonce,
            code_challenge=authorization.code_challenge,
            user=session.user,
            auth_time=session.auth_time,
            mfa=session.mfa,
            acrs=acrs,
            expires_at=time.time() + self.code_lifetime,
        )
        self.codes[code.code] = code
        self.authorizations.pop(authorization.request_id, None)
        return code

    def new_session(self, user: StandInUser, *, mfa: bool) -> BrowserSession:
        session = BrowserSession(secrets.token_urlsafe(24), user, time.time() - self.auth_time_shift, mfa)
        self.sessions[session.session_id] = session
        return session

    def clear(self) -> None:
        self.users.clear()
        self.groups.clear()
        self.group_names.clear()
        self.grants.clear()
        self.sessions.clear()
        self.authorizations.clear()
        self.codes.clear()
        self.redirect_uris.clear()
        self.honour_prompt_login = True
        self.auth_time_shift = 0.0
