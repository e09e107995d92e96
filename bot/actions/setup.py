"""Setup: the Kerberos server and, in a forest root, the cloud trust (sovereign top-level names). In a
multi-domain forest the root comes first and a child is set up without the trust; the module fails
otherwise with LsaCreateTrustedDomainEx 0x549."""

from __future__ import annotations

from bot.actions.base import ActionContext, ActionSpec, Ask, Draft, Handing, Outcome, PreflightError, Run
from bot.domain.approvals import ACTION_KINDS, Action, ChangeRequest
from bot.domain.hints import hint
from bot.domain.model import DEFAULT_TOP_LEVEL_NAMES
from bot.domain.operators import Effect, command_line
from bot.domain.ports import ActiveDirectory, SetServerOptions
from bot.domain.top_level_names import check_top_level_names


async def plan(ctx: ActionContext, directory: ActiveDirectory, ask: Ask) -> Draft:
    name = directory.domain_dns_name
    root = ctx.forest_root(name)
    is_root = root == name
    top_level_names = check_top_level_names(ask.top_level_names) if is_root else ()
    state = await directory.read_kerberos_objects()
    if is_root and state.server is not None and state.trusted_domain is not None:
        raise PreflightError(f"{name} already has the Kerberos server and the cloud trust: nothing to set up.")
    if not is_root:
        if state.server is not None:
            raise PreflightError(f"{name} already has the Kerberos server: nothing to set up.")
        root_state = await ctx.directory(root).read_kerberos_objects()
        if root_state.trusted_domain is None:
            raise PreflightError(
                f"{name} is a child domain of the forest {root}: the cloud trust is set up in the forest root "
                f"first ({hint(f'setup {root}')}), then in {name} without it. (Microsoft's module fails "
                "otherwise with LsaCreateTrustedDomainEx 0x549.)"
            )
    switches = " -SetupCloudTrust" if is_root else ""
    if is_root and top_level_names != DEFAULT_TOP_LEVEL_NAMES:
        switches += f' -TopLevelNames "{",".join(top_level_names)}"'
    steps = [f"Set-AzureADKerberosServer -Domain {name}{switches}"]
    existing = state.server
    takeover = existing is not None and not (await ctx.module.get_server(name)).has_cloud
    if existing is not None and takeover:
        # one domain, one tenant: a server in AD that this tenant does not know may serve another one
        steps.insert(
            0,
            f"WARNING: AD already holds an Entra Kerberos server ({existing.display_name or 'krbtgt_AzureAD'}) "
            "that this bot's tenant does not know. A domain's Kerberos server serves one tenant: if it serves "
            "another tenant, setting it up here overwrites that tenant's trust and breaks its Kerberos. "
            "Approve only if that tenant no longer uses it (this request needs as many approvals as remove-all).",
        )
    if state.server is None:
        steps.append(f"AD: create the krbtgt_AzureAD account and the AzureADKerberos computer in {name}")
        steps.append("Entra: register the Kerberos server (KerberosDomain) with the same key")
    if is_root:
        steps.append(
            f"AD: create the inbound trusted domain object KERBEROS.MICROSOFTONLINE.COM (top-level names "
            f"{', '.join(top_level_names)}); Entra records the cloud trust"
        )
    else:
        steps.append(f"No cloud trust here: it lives in the forest root {root}")
    return Draft(tuple(steps), top_level_names=top_level_names, as_strong_as_removal=takeover)


async def carry_out(ctx: ActionContext, run: Run) -> Outcome:
    request = run.request
    directory = ctx.directory(request.domain)
    is_root = ctx.forest_root(request.domain) == request.domain
    before = await directory.read_kerberos_objects()
    if before.server is not None and (before.trusted_domain is not None or not is_root):
        return Outcome(False, "Stopped: it is already set up; nothing was changed.")
    options = SetServerOptions(setup_cloud_trust=is_root, top_level_names=request.top_level_names or None)
    report = await run.call("Set-AzureADKerberosServer", ctx.module.set_server(request.domain, options))
    after = await directory.read_kerberos_objects()
    if after.server is None or (is_root and after.trusted_domain is None):
        return Outcome(False, "The module reported success but the objects are not all in AD.")
    if report.key_version != report.cloud_key_version:
        return Outcome(
            False, f"Set up, but KeyVersion {report.key_version} != CloudKeyVersion {report.cloud_key_version}."
        )
    trust = (
        f" and the cloud trust (top-level names {', '.join(after.trusted_domain.top_level_names)})"
        if after.trusted_domain is not None
        else ""
    )
    return Outcome(
        True,
        f"Set up the Entra Kerberos server (ID {report.id}, KeyVersion {report.key_version}){trust}. "
        "Microsoft recommends a forced rotation right after creating the trusted domain object.",
    )


async def hand_over(ctx: ActionContext, request: ChangeRequest, upn: str) -> Handing:
    is_root = ctx.forest_root(request.domain) == request.domain
    options = SetServerOptions(setup_cloud_trust=is_root, top_level_names=request.top_level_names or None)
    effect = Effect(
        server=True,
        trust=True if is_root else None,
        key="any",
        trust_keys="any",
        activities=("Add kerberos domain", "Update kerberos domain"),
    )
    return Handing(command_line("Set-AzureADKerberosServer", request.domain, upn, options), effect)


SPECS = (ActionSpec(ACTION_KINDS[Action.SETUP], plan, carry_out, hand_over),)
