"""Rotations: rotate, rotate --force, emergency-rotate (break-glass), and the second rotation of a double
one. A rotation in a domain with the cloud trust passes -SetupCloudTrust, as the source document does."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from bot.actions.base import ActionContext, ActionSpec, Ask, Draft, Handing, Outcome, PreflightError, Run, when
from bot.domain.approvals import ACTION_KINDS, Action, ChangeRequest
from bot.domain.findings import rotation_window
from bot.domain.model import DEFAULT_TOP_LEVEL_NAMES, KERBEROS_REALM, OnPremState
from bot.domain.operators import Effect, command_line
from bot.domain.ports import ActiveDirectory, SetServerOptions


def rotates_trust(ctx: ActionContext, name: str, state: OnPremState) -> bool:
    """A rotation in a domain with the cloud trust changes the trust's keys too ("the Kerberos key for your
    service account ... and Trusted Domain Object"); a child domain (its trust lives in the root) or a
    FIDO-only domain rotates the service account alone."""
    return state.trusted_domain is not None and ctx.forest_root(name) == name


async def plan_rotation(
    ctx: ActionContext, directory: ActiveDirectory, ask: Ask, *, force: bool, force_where_needed: bool = False
) -> Draft:
    """``force_where_needed`` (break-glass): -Force only while the 24-hour window has not passed."""
    name = directory.domain_dns_name
    state = await directory.read_kerberos_objects()
    server = state.server
    if server is None or server.key is None or server.krbtgt_dn is None:
        raise PreflightError(f"There is no Entra Kerberos server in {name}: nothing to rotate.")
    window = rotation_window(server.key.updated_on, ctx.now(), ctx.rotation)
    if force_where_needed:
        force = not window.allowed_now
    if not window.allowed_now and not force:
        raise PreflightError(
            f"The key was changed at {server.key.updated_on:%Y-%m-%d %H:%M} UTC; propagation between KDCs "
            f"takes hours, so a rotation before {window.allowed_from:%Y-%m-%d %H:%M} UTC needs `--force` "
            f"({ctx.policies[Action.ROTATE_FORCE].approvals_required} approvals)."
        )
    tdo = state.trusted_domain if rotates_trust(ctx, name, state) else None
    switches = " -RotateServerKey" + (" -Force" if force else "")
    top_level_names: tuple[str, ...] = ()
    if tdo is not None:
        top_level_names = tdo.top_level_names or DEFAULT_TOP_LEVEL_NAMES
        switches = " -SetupCloudTrust" + switches
        if top_level_names != DEFAULT_TOP_LEVEL_NAMES:
            switches += f' -TopLevelNames "{",".join(top_level_names)}"'
    plan = [
        f"Set-AzureADKerberosServer -Domain {name}{switches}",
        f"AD: new random key on {server.krbtgt_dn} (unicodePwd); KeyVersion {server.key.version} grows",
        "Entra: the KerberosDomain object gets the same key (CloudKeyVersion = KeyVersion)",
    ]
    if tdo is not None:
        plan.append(
            f"AD: new keys on the trusted domain object {KERBEROS_REALM} (trustAuthIncoming, and "
            f"trustAuthOutgoing where it has one; last changed {when(tdo.keys_updated_on)}); top-level names "
            f"kept: {', '.join(top_level_names)}"
        )
    elif state.trusted_domain is not None:
        plan.append("The trust's keys are not changed here: the cloud trust lives in the forest root")
    else:
        plan.append("No cloud trust in this domain (FIDO only): only the service account's key changes")
    plan.append("The new key takes hours to reach every KDC; the old key stays valid as the secondary key")
    if ask.twice and not ask.follows and not force_where_needed:
        approved = (
            "approved together with this one: approving this approves both"
            if ask.second_with_first
            else "with its own approvals, as this one"
        )
        plan.append(
            "Double rotation: once the 24-hour window has passed, the bot files the second rotation (its own "
            f"request, without -Force), {approved}; it retires the old key"
        )
    if ask.follows:
        plan.append(f"The second rotation of {ask.follows}: the key that one left valid stops working")
    if ask.approved_with:
        plan.append(f"Approved together with {ask.approved_with}, as the policy allows: it runs without a click")
    return Draft(tuple(plan), expected_key_version=server.key.version, top_level_names=top_level_names)


async def plan_normal(ctx: ActionContext, directory: ActiveDirectory, ask: Ask) -> Draft:
    return await plan_rotation(ctx, directory, ask, force=False)


async def plan_forced(ctx: ActionContext, directory: ActiveDirectory, ask: Ask) -> Draft:
    return await plan_rotation(ctx, directory, ask, force=True)


async def plan_emergency(ctx: ActionContext, directory: ActiveDirectory, ask: Ask) -> Draft:
    draft = await plan_rotation(ctx, directory, ask, force=False, force_where_needed=True)
    if ask.follows:
        return draft
    approved = "approved together with this one" if ask.second_with_first else "approved by the same policy, on its own"
    steps = (
        "Break-glass: the approvers of [approvals.emergency_rotate], and the alert channel is told; -Force "
        "only while the key is less than 24 hours old",
        f"Once the new key is on every DC, the bot files the second rotation ({approved}), forced where "
        "needed, which retires the old key; then two people review what happened",
    )
    return replace(draft, plan=(*draft.plan, *steps))


def _options(ctx: ActionContext, request: ChangeRequest, key_changed: datetime, with_trust: bool) -> SetServerOptions:
    # break-glass forces only where the 24-hour rule needs it; a forced rotation always
    needs_force = not rotation_window(key_changed, ctx.now(), ctx.rotation).allowed_now
    return SetServerOptions(
        rotate_server_key=True,
        force=request.action == Action.ROTATE_FORCE or (request.action == Action.EMERGENCY_ROTATE and needs_force),
        setup_cloud_trust=with_trust,
        top_level_names=(request.top_level_names or None) if with_trust else None,
    )


async def hand_over(ctx: ActionContext, request: ChangeRequest, upn: str) -> Handing:
    before = await ctx.directory(request.domain).read_kerberos_objects()
    key = before.server.key if before.server else None
    if key is None:
        raise PreflightError("Stopped: the Kerberos server is gone since the request; nothing was handed over.")
    with_trust = rotates_trust(ctx, request.domain, before)
    options = _options(ctx, request, key.updated_on, with_trust)
    effect = Effect(
        server=True,
        trust=None,
        key="new",
        trust_keys="new" if with_trust else "same",
        activities=("Update kerberos domain",),
    )
    return Handing(command_line("Set-AzureADKerberosServer", request.domain, upn, options), effect)


async def carry_out(ctx: ActionContext, run: Run) -> Outcome:
    request = run.request
    directory = ctx.directory(request.domain)
    before = await directory.read_kerberos_objects()
    key = before.server.key if before.server else None
    if key is None:
        return Outcome(False, "Stopped: the Kerberos server is gone since the request; nothing was changed.")
    if request.expected_key_version is not None and key.version != request.expected_key_version:
        return Outcome(
            False,
            f"Stopped: the key changed since the request (KeyVersion {request.expected_key_version} -> "
            f"{key.version}); nothing was changed.",
        )
    with_trust = rotates_trust(ctx, request.domain, before)
    options = _options(ctx, request, key.updated_on, with_trust)
    await run.note(f"re-validated: KeyVersion {key.version}")
    report = await run.call(
        "Set-AzureADKerberosServer -RotateServerKey", ctx.module.set_server(request.domain, options)
    )
    after = await directory.read_kerberos_objects()
    new_key = after.server.key if after.server else None
    if new_key is None or new_key.version == key.version:
        return Outcome(False, "The module reported success but AD still holds the old key.")
    if report.key_version != report.cloud_key_version:
        return Outcome(
            False,
            f"Rotated in AD (KeyVersion {new_key.version}) but Entra shows CloudKeyVersion "
            f"{report.cloud_key_version}: Kerberos for cloud users breaks until they match. Rotate with --force.",
        )
    trust = ""
    if with_trust:
        old_tdo, new_tdo = before.trusted_domain, after.trusted_domain
        was = old_tdo.keys_updated_on if old_tdo else None
        now = new_tdo.keys_updated_on if new_tdo else None
        # proven by the TDO's replication metadata (its version grows with every change, even within the
        # second its time shows), not by the call's status: Samba answers OK to LSA sets that change nothing
        old_change = old_tdo.keys_change if old_tdo else None
        new_change = new_tdo.keys_change if new_tdo else None
        if old_change is not None and new_change is not None:
            unchanged = new_change == old_change
        else:
            unchanged = was is not None and (now is None or now <= was)
        if new_tdo is None or unchanged:
            return Outcome(
                False,
                f"Rotated the service account's key (KeyVersion {key.version} -> {new_key.version}), but the "
                f"trusted domain object's keys did not change (last changed {when(was)}): the trust-based "
                "flow keeps the old trust keys. Check the module's output on the management host.",
            )
        trust = f" The trusted domain object has new keys too (changed {when(now)})."
    if request.twice:
        then = "the bot files the second rotation once the 24-hour window has passed, to retire it."
    elif request.follows:
        then = f"with this second rotation (after {request.follows}) the key before it is retired."
    else:
        then = "rotate again after 24 hours to retire it fully."
    return Outcome(
        True,
        f"Rotated: KeyVersion {key.version} -> {new_key.version}, CloudKeyVersion {report.cloud_key_version}.{trust} "
        f"The new key takes several hours to reach every KDC. The old key stays valid as the secondary key; {then}",
    )


SPECS = (
    ActionSpec(ACTION_KINDS[Action.ROTATE], plan_normal, carry_out, hand_over),
    ActionSpec(ACTION_KINDS[Action.ROTATE_FORCE], plan_forced, carry_out, hand_over),
    ActionSpec(ACTION_KINDS[Action.EMERGENCY_ROTATE], plan_emergency, carry_out, hand_over),
)
