"""The identity platform: OpenID discovery, the v2.0 token endpoint (client secret or certificate
assertion; the approvers' device code and authorization code), and the tokens it mints."""

from __future__ import annotations

import base64
import json
import secrets
import time
import uuid
from typing import Any

import jwt
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from kerberos_sandbox.entra.base import (
    DEVICE_CODE_GRANT,
    GRAPH_RESOURCE,
    TOKEN_LIFETIME,
    StandInBase,
    aadsts,
    x5t,
)
from kerberos_sandbox.entra_people import StandInUser
from kerberos_sandbox.entra_signin_pages import SignInPages


class IdentityPlatform(StandInBase):
    _sign_in_pages: SignInPages

    def _add_identity_routes(self, app: web.Application) -> None:
        t = "/{tenant}"
        app.router.add_get(t + "/v2.0/.well-known/openid-configuration", self._discovery)
        app.router.add_post(t + "/oauth2/v2.0/token", self._token)
        app.router.add_post(t + "/oauth2/v2.0/devicecode", self._devicecode)
        app.router.add_get("/msi/token", self._managed_identity_token)
        app.router.add_routes(self._sign_in_pages.routes(t))

    def register_certificate(self, public_pem: bytes) -> str:
        """Register an app certificate; returns its SHA-1 thumbprint (hex), as the portal shows it.

        Assertions may name it by ``x5t`` (SHA-1, RS256) or ``x5t#S256`` (SHA-256, PS256).
        """
        cert = x509.load_pem_x509_certificate(public_pem)
        sha1 = cert.fingerprint(hashes.SHA1())
        self.state.certificates[x5t(sha1)] = public_pem.decode()
        self.state.certificates[x5t(cert.fingerprint(hashes.SHA256()))] = public_pem.decode()
        return sha1.hex().upper()

    async def _discovery(self, request: web.Request) -> web.Response:
        tenant = request.match_info["tenant"]
        if not self._known_tenant(tenant):
            return aadsts(
                400,
                "invalid_tenant",
                90002,
                f"Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are "
                "signing into the correct cloud.",
            )
        base = f"{self.url}/{tenant}"
        return web.json_response(
            {
                "token_endpoint": f"{base}/oauth2/v2.0/token",
                "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
                "issuer": f"{self.url}/{self.tenant_id}/v2.0",
                "jwks_uri": f"{base}/discovery/v2.0/keys",
                "token_endpoint_auth_methods_supported": [
                    "client_secret_post",
                    "private_key_jwt",
                    "client_secret_basic",
                ],
                "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
                "scopes_supported": ["openid", "profile", "email", "offline_access"],
                "subject_types_supported": ["pairwise"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "tenant_region_scope": "EU",
                "cloud_instance_name": "microsoftonline.com",
            }
        )

    def _check_assertion(self, assertion: str, token_endpoint: str) -> tuple[int, str] | None:
        """None when the certificate assertion is valid, else (AADSTS code, reason)."""
        try:
            header = jwt.get_unverified_header(assertion)
        except jwt.PyJWTError:
            return 700027, "Client assertion is not a valid JWT."
        kid = str(header.get("x5t#S256") or header.get("x5t") or "").rstrip("=")
        pem = self.state.certificates.get(kid)
        if pem is None:
            return (
                700027,
                "The certificate with identifier used to sign the client assertion is not registered on application.",
            )
        public_key = x509.load_pem_x509_certificate(pem.encode()).public_key()
        try:
            claims = jwt.decode(
                assertion,
                public_key,  # type: ignore[arg-type]
                algorithms=["RS256", "PS256"],
                options={"verify_aud": False, "require": ["exp", "aud", "iss", "sub"]},
            )
        except jwt.ExpiredSignatureError:
            return 700024, "Client assertion is not within its valid time range."
        except jwt.PyJWTError as exc:
            return 700027, f"Client assertion failed signature validation ({type(exc).__name__})."
        if claims.get("aud") != token_endpoint:
            return 700023, "Client assertion audience claim does not match Realm issuer."
        if claims.get("iss") != self.client_id or claims.get("sub") != self.client_id:
            return 700021, "Client assertion application identifier doesn't match 'client_id' parameter."
        return None

    def _app_token(self, audience: str, app_id: str, object_id: str) -> str:
        """An app-only token (a service principal's, or a managed identity's) for ``audience``."""
        now = int(time.time())
        self.state.tokens_issued += 1
        token = jwt.encode(
            {
                "aud": audience,
                "iss": f"https://sts.windows.net/{self.tenant_id}/",
                "iat": now,
                "nbf": now,
                "exp": now + self.state.app_token_lifetime,
                "appid": app_id,
                "oid": object_id,
                "sub": object_id,
                "tid": self.tenant_id,
                "epoch": self.state.token_epoch,
                "roles": list(self.state.roles),
                "idtyp": "app",
                "uti": uuid.uuid4().hex,
            },
            self._signing_key,
            algorithm="HS256",
        )
        if self.state.on_app_token is not None:
            self.state.on_app_token(audience, object_id, token)
        return token

    async def _managed_identity_token(self, request: web.Request) -> web.Response:
        """App Service's managed identity endpoint (IDENTITY_ENDPOINT, with IDENTITY_HEADER), as msal calls it."""
        if not secrets.compare_digest(request.headers.get("X-IDENTITY-HEADER", ""), self.state.managed_identity_header):
            return web.json_response({"statusCode": 401, "message": "Unauthorized request"}, status=401)
        resource = request.query.get("resource", "").rstrip("/")
        if not resource:
            return web.json_response({"statusCode": 400, "message": "resource is required"}, status=400)
        token = self._app_token(resource, "managed-identity", self.state.managed_identity_object_id)
        expires_on = int(time.time()) + self.state.app_token_lifetime
        return web.json_response(
            {"access_token": token, "expires_on": str(expires_on), "resource": resource, "token_type": "Bearer"}
        )

    async def _token(self, request: web.Request) -> web.Response:
        tenant = request.match_info["tenant"]
        if not self._known_tenant(tenant):
            return aadsts(400, "invalid_request", 90002, f"Tenant '{tenant}' not found.")
        form = await request.post()
        if form.get("grant_type") == "authorization_code":
            return self._sign_in_pages.redeem(form)
        if form.get("grant_type") == DEVICE_CODE_GRANT:
            return self._device_code_token(tenant, str(form.get("client_id") or ""), str(form.get("device_code") or ""))
        if form.get("grant_type") != "client_credentials":
            return aadsts(400, "unsupported_grant_type", 70003, "The app requested an unsupported grant type.")
        client_id = str(form.get("client_id") or "")
        if client_id != self.client_id:
            return aadsts(
                400,
                "unauthorized_client",
                700016,
                f"Application with identifier '{client_id}' was not found in the directory "
                f"'{self.state.organization}'.",
            )
        scope = str(form.get("scope") or "")
        if not scope.endswith("/.default"):
            return aadsts(400, "invalid_scope", 1002012, f"The provided value for scope {scope} is not valid.")
        assertion = form.get("client_assertion")
        if isinstance(assertion, str):
            problem = self._check_assertion(assertion, f"{self.url}/{tenant}/oauth2/v2.0/token")
            if problem:
                return aadsts(401, "invalid_client", *problem)
        elif not secrets.compare_digest(str(form.get("client_secret") or ""), self.client_secret):
            return aadsts(
                401,
                "invalid_client",
                7000215,
                "Invalid client secret provided. Ensure the secret being sent in the request is the client "
                f"secret value, not the client secret ID, for a secret added to app '{self.client_id}'.",
            )
        audience = scope.removesuffix("/.default").rstrip("/")
        access_token = self._app_token(audience, self.client_id, self.state.app_object_id)
        lifetime = self.state.app_token_lifetime
        return web.json_response(
            {
                "token_type": "Bearer",
                "expires_in": lifetime,
                "ext_expires_in": lifetime,
                "access_token": access_token,
            }
        )

    def _public_client_problem(self, client_id: str) -> web.Response | None:
        if client_id == self.public_client_id:
            return None
        if client_id == self.client_id:  # the bot's confidential app: public client flows are off
            return aadsts(
                401,
                "invalid_client",
                7000218,
                "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
            )
        return aadsts(
            400,
            "unauthorized_client",
            700016,
            f"Application with identifier '{client_id}' was not found in the directory '{self.state.organization}'.",
        )

    async def _devicecode(self, request: web.Request) -> web.Response:
        tenant = request.match_info["tenant"]
        if not self._known_tenant(tenant):
            return aadsts(400, "invalid_request", 90002, f"Tenant '{tenant}' not found.")
        form = await request.post()
        problem = self._public_client_problem(str(form.get("client_id") or ""))
        if problem is not None:
            return problem
        grant = self.people.start_grant(self.public_client_id, str(form.get("scope") or ""))
        page = f"{self.url}/devicelogin"
        code = grant.user_code
        return web.json_response(
            {
                "user_code": code,
                "device_code": grant.device_code,
                "verification_uri": page,
                "expires_in": str(self.people.device_code_lifetime),  # Entra sends these as strings
                "interval": str(grant.interval),
                "message": f"To sign in, use a web browser to open the page {page} and enter the code {code} "
                "to authenticate.",
            }
        )

    def _device_code_token(self, tenant: str, client_id: str, device_code: str) -> web.Response:
        problem = self._public_client_problem(client_id)
        if problem is not None:
            return problem
        grant = self.people.grants.get(device_code)
        if grant is None or grant.redeemed:
            return aadsts(400, "invalid_grant", 70000, "The provided value for the 'device_code' is not valid.")
        grant.polls += 1
        if time.time() >= grant.expires_at:
            return aadsts(
                400,
                "expired_token",
                70020,
                "The provided value for the input parameter 'device_code' is not valid. This device code has expired.",
            )
        if grant.outcome == "pending":
            return aadsts(
                400,
                "authorization_pending",
                70016,
                "OAuth 2.0 device flow error. Authorization is pending. Continue polling.",
            )
        if grant.outcome != "signed_in":
            reasons = {
                "authorization_declined": (70019, "The end user declined the authorization request."),
                "access_denied": (53003, "Access has been blocked by Conditional Access policies."),
            }
            code, text = reasons.get(grant.outcome, (70000, "The sign-in failed."))
            return aadsts(400, grant.outcome, code, text)
        grant.redeemed = True
        assert grant.user is not None
        now = int(time.time())
        return web.json_response(
            self._user_tokens(
                grant.user, grant.scope, {"auth_time": now, "amr": ["pwd", "mfa"] if grant.mfa else ["pwd"]}
            )
        )

    def _user_tokens(self, user: StandInUser, scope: str, id_claims: dict[str, Any]) -> dict[str, Any]:
        """Tokens of a user sign-in; ``id_claims`` adds what the flow decides (amr, auth_time, nonce, acrs)."""
        now = int(time.time())
        common = {"iat": now, "nbf": now, "exp": now + TOKEN_LIFETIME, "tid": self.tenant_id, "oid": user.object_id}
        id_token = jwt.encode(
            {
                **common,
                "aud": self.public_client_id,
                "iss": f"{self.url}/{self.tenant_id}/v2.0",
                "sub": uuid.uuid5(uuid.NAMESPACE_URL, user.object_id + self.public_client_id).hex,
                "ver": "2.0",
                "name": user.display_name,
                "preferred_username": user.upn,
                "email": user.mail,
                **id_claims,
            },
            self._signing_key,
            algorithm="HS256",
        )
        access_token = jwt.encode(
            {
                **common,
                "aud": GRAPH_RESOURCE,
                "iss": f"https://sts.windows.net/{self.tenant_id}/",
                "scp": scope,
                "appid": self.public_client_id,
                "upn": user.upn,
                "epoch": self.state.token_epoch,
            },
            self._signing_key,
            algorithm="HS256",
        )
        client_info = (
            base64.urlsafe_b64encode(json.dumps({"uid": user.object_id, "utid": self.tenant_id}).encode())
            .decode()
            .rstrip("=")
        )
        return {
            "token_type": "Bearer",
            "scope": scope,
            "expires_in": TOKEN_LIFETIME,
            "ext_expires_in": TOKEN_LIFETIME,
            "access_token": access_token,
            "refresh_token": secrets.token_urlsafe(40),
            "id_token": id_token,
            "client_info": client_info,
        }
