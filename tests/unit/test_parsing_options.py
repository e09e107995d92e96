import pytest

from bot.domain.errors import UsageError
from handlers.parsing import parse_command


def test_value_option_with_space_or_equals() -> None:
    spaced = parse_command("setup contoso.com --top-level-names usgovcloudapi.net,windows.net -- sovereign")
    assert spaced.args == ("contoso.com",) and spaced.options == {"top-level-names": "usgovcloudapi.net,windows.net"}
    equals = parse_command("setup contoso.com --top-level-names=windows.net -- x")
    assert equals.options == {"top-level-names": "windows.net"} and equals.reason == "x"


def test_value_option_without_value_is_explained() -> None:
    with pytest.raises(UsageError, match="needs a value"):
        parse_command("setup contoso.com --top-level-names")
