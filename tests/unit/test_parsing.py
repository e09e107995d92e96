import pytest

from bot.domain.errors import UsageError
from handlers.parsing import MAX_COMMAND_LENGTH, parse_command


def test_empty_text_means_help() -> None:
    assert parse_command("   ").name == "help"


def test_subcommand_args_flags_and_reason() -> None:
    parsed = parse_command("Rotate contoso.com --force -- quarterly rotation, ticket CHG-42")
    assert parsed.name == "rotate"
    assert parsed.args == ("contoso.com",)
    assert parsed.flags == frozenset({"force"})
    assert parsed.reason == "quarterly rotation, ticket CHG-42"


def test_quotes_keep_an_argument_together() -> None:
    assert parse_command('status "contoso.com"').args == ("contoso.com",)


def test_unbalanced_quote_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="quotes"):
        parse_command('status "contoso.com')


def test_overlong_command_is_refused() -> None:
    with pytest.raises(UsageError, match="limit"):
        parse_command("status " + "a" * MAX_COMMAND_LENGTH)
