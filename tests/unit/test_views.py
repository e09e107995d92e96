"""The Block Kit views are valid for Slack (slack_sdk's models validate on to_dict)."""

from datetime import timedelta

from kerberos_sandbox.render import render_message
from slack_sdk.models.blocks import Block

from bot.domain.diagnosis import diagnose
from bot.domain.findings import Observations, RotationPolicy
from bot.domain.model import KerberosServerReport
from bot.services.status import DomainStatus
from handlers.replies import error_reply
from handlers.router import catalog
from handlers.views.blocks import MAX_BLOCKS
from handlers.views.help import help_reply
from handlers.views.status import status_replies
from tests.support.fakes import NOW, cloud_of, on_prem_state


def status_of(domain: str, **kw) -> DomainStatus:  # type: ignore[no-untyped-def]
    state = on_prem_state(domain, **kw)
    report = KerberosServerReport.combine(state.server, domain, cloud_of(state))
    diag = diagnose(Observations(domain, report, state, None), NOW, RotationPolicy())
    return DomainStatus(domain, report, state, None, diag, NOW)


def test_status_blocks_validate_and_hold_all_module_fields() -> None:
    [reply] = status_replies([status_of("contoso.test")])
    payload = reply.payload()
    parsed = [Block.parse(b) for b in payload["blocks"]]
    assert all(b is not None for b in parsed)
    text = str(payload["blocks"])
    for name in ("ID", "UserAccount", "ComputerAccount", "KeyUpdatedFrom", "CloudTrustDisplay"):
        assert f"*{name}*" in text
    assert payload["response_type"] == "in_channel"


def test_a_hundred_domains_read_in_slack_every_one_named_the_unhealthy_first_and_in_full() -> None:
    old_key = NOW - timedelta(days=400)  # older than the policy's maximum age: not healthy
    statuses = [status_of(f"d{i:03}.contoso.test", key_updated_on=old_key if i % 10 == 7 else None) for i in range(100)]
    replies = status_replies(statuses)
    payloads = [r.payload() for r in replies]
    assert all(len(p["blocks"]) <= MAX_BLOCKS for p in payloads)
    sections = [b["text"]["text"] for p in payloads for b in p["blocks"] if b["type"] == "section" and "text" in b]
    assert all(len(text) <= 3000 for text in sections)
    summary = str(payloads[0]["blocks"])
    assert "Kerberos status of 100 domains: 90 healthy" in summary
    assert all(f"d{i:03}.contoso.test" in summary for i in range(100))  # every domain named
    assert summary.index("d007.contoso.test") < summary.index("d000.contoso.test")  # the unhealthy first
    detailed = [str(p["blocks"]) for p in payloads[1:]]
    assert sum(f"Kerberos status: d{i:03}.contoso.test" in "".join(detailed) for i in range(100)) == 10  # in full


def test_a_few_domains_are_split_to_respect_the_block_limit() -> None:
    statuses = [status_of(f"d{i}.contoso.test") for i in range(5)]
    replies = status_replies(statuses)
    assert all(len(r.blocks) <= MAX_BLOCKS for r in replies)
    shown = "".join(str(r.payload()["blocks"]) for r in replies)
    assert all(f"Kerberos status: d{i}.contoso.test" in shown for i in range(5))


def test_directory_values_are_escaped_not_markup() -> None:
    status = status_of("contoso.test")
    report = status.report
    assert report is not None
    evil = DomainStatus(
        status.domain,
        KerberosServerReport(**{**report.__dict__, "key_updated_from": "<!channel>"}),
        status.on_prem,
        None,
        status.diagnosis,
        NOW,
    )
    [reply] = status_replies([evil])
    assert "<!channel>" not in str(reply.payload()) and "&lt;!channel&gt;" in str(reply.payload())


def test_help_and_error_replies_validate() -> None:
    help_reply(catalog()).payload()
    assert error_reply("x" * 5000).payload()["blocks"][0]["text"]["text"].endswith("…")


def test_text_rendering_shows_what_slack_would() -> None:
    [reply] = status_replies([status_of("contoso.test", key_updated_on=NOW - timedelta(hours=2))])
    text = render_message(reply.payload())
    assert "Kerberos status: contoso.test" in text
    assert "KeyVersion" in text and "53325" in text
    assert "needs --force" in text
