"""Removals: remove-tdo (the trusted domain object only; FIDO keeps working) and remove-all."""

from __future__ import annotations

from bot.actions.base import ActionContext, ActionSpec, Ask, Draft, Handing, Outcome, PreflightError, Run
from bot.domain.approvals import ACTION_KINDS, Action, ChangeRequest
from bot.domain.hints import hint
from bot.domain.operators import Effect, command_line
from bot.domain.ports import ActiveDirectory


async def plan_tdo_removal(ctx: ActionContext, directory: ActiveDirectory, ask: Ask) -> Draft:
    name = directory.domain_dns_name
    state = await directory.read_kerberos_objects()
    if state.trusted_domain is None:
        raise PreflightError(f"There is no trusted domain object in {name}: nothing to remove.")
    return Draft(
        (
            f"Remove-AzureADKerberosServerTrustedDomainObject -Domain {name}",
            f"AD: delete {state.trusted_domain.dn} and its trust account KERBEROS$",
            "Entra: the cloud trust is cleared (CloudTrustDisplay becomes empty)",
            "Kept: the krbtgt_AzureAD account and the AzureADKerberos computer, so FIDO sign-in keeps working; "
            "the incoming trust-based flow (Azure SQL Managed Instance) stops",
        )
    )


async def carry_out_tdo_removal(ctx: ActionContext, run: Run) -> Outcome:
    domain = run.request.domain
    directory = ctx.directory(domain)
    if (await directory.read_kerberos_objects()).trusted_domain is None:
        return Outcome(False, "Stopped: the trusted domain object is already gone; nothing was changed.")
    cmdlet = "Remove-AzureADKerberosServerTrustedDomainObject"
    await run.call(cmdlet, ctx.module.remove_trusted_domain_object(domain))
    after = await directory.read_kerberos_objects()
    if after.trusted_domain is not None:
        return Outcome(False, "The module reported success but the trusted domain object is still in AD.")
    if after.server is None:
        return Outcome(False, "The trusted domain object is gone, but so is the Kerberos server: FIDO sign-in stops.")
    return Outcome(
        True,
        "Removed the trusted domain object. The Entra Kerberos server stays, so FIDO sign-in keeps working; "
        "the incoming trust-based flow for Azure SQL Managed Instance no longer does.",
    )


async def plan_removal(ctx: ActionContext, directory: ActiveDirectory, ask: Ask) -> Draft:
    name = directory.domain_dns_name
    state = await directory.read_kerberos_objects()
    if state.server is None and state.trusted_domain is None:
        raise PreflightError(f"There is no Entra Kerberos server in {name}: nothing to remove.")
    return Draft(
        (
            f"Remove-AzureAdKerberosServer -Domain {name}",
            "AD: delete the trusted domain object (if any), the krbtgt_AzureAD account, the AzureADKerberos "
            "computer and the service connection point",
            "Entra: delete the Kerberos server object",
            "Afterwards neither FIDO sign-in nor the incoming trust-based flow works in this domain",
        )
    )


async def carry_out_removal(ctx: ActionContext, run: Run) -> Outcome:
    domain = run.request.domain
    directory = ctx.directory(domain)
    before = await directory.read_kerberos_objects()
    if before.server is None and before.trusted_domain is None:
        return Outcome(False, "Stopped: there is nothing left to remove; nothing was changed.")
    await run.call("Remove-AzureAdKerberosServer", ctx.module.remove_server(domain))
    after = await directory.read_kerberos_objects()
    report = await ctx.module.get_server(domain)
    if after.server is not None or after.trusted_domain is not None or report.has_cloud:
        return Outcome(False, f"The module reported success but objects remain; check {hint('status')}.")
    return Outcome(
        True,
        "Removed all Kerberos settings: the trusted domain object, the service account, the computer "
        "object and the Entra object. FIDO sign-in and the trust-based flow no longer work in this domain.",
    )


async def hand_over_tdo_removal(ctx: ActionContext, request: ChangeRequest, upn: str) -> Handing:
    # the trust goes, the server and its key stay (FIDO keeps working); Entra's object is updated
    effect = Effect(server=True, trust=False, key="same", trust_keys="any", activities=("Update kerberos domain",))
    return Handing(command_line("Remove-AzureADKerberosServerTrustedDomainObject", request.domain, upn), effect)


async def hand_over_removal(ctx: ActionContext, request: ChangeRequest, upn: str) -> Handing:
    effect = Effect(server=False, trust=False, key="any", trust_keys="any", activities=("Delete kerberos domain",))
    return Handing(command_line("Remove-AzureAdKerberosServer", request.domain, upn), effect)


SPECS = (
    ActionSpec(ACTION_KINDS[Action.REMOVE_TDO], plan_tdo_removal, carry_out_tdo_removal, hand_over_tdo_removal),
    ActionSpec(ACTION_KINDS[Action.REMOVE_ALL], plan_removal, carry_out_removal, hand_over_removal),
)
