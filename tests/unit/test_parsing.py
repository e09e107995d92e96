import random
import shlex

import pytest

from bot.domain.errors import UsageError
from handlers.parsing import MAX_COMMAND_LENGTH, parse_command, split_words


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


def test_the_quick_split_is_shlex_split_wherever_it_is_taken() -> None:
    # split_words skips shlex for text without quotes or backslashes; it must split exactly as shlex would,
    # Unicode's other spaces (a no-break space pasted from a chat) staying inside words as shlex keeps them
    alphabet = ["a", "Z", "7", ".", "-", "--", "=", ",", "#", "*", "é", " ", "  ", "\t", "\n", "\r", "\xa0", "\u3000"]
    rng = random.Random(20261207)
    texts = ["", " ", "status", "  status   contoso.com ", "rotate\tcontoso.com\n--force", "a\xa0b c"]
    texts += ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 24))) for _ in range(3000)]
    for text in texts:
        assert split_words(text) == shlex.split(text), repr(text)
