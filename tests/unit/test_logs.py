import json
import logging
import sys

from bot.observability.logs import REQUEST_ID, JsonFormatter, TextFormatter, new_request_id, set_user


def test_each_line_is_json_with_request_and_user() -> None:
    token = REQUEST_ID.set("-")
    try:
        rid = new_request_id()
        set_user("U0ALICE")
        record = logging.LogRecord("bot.x", logging.INFO, __file__, 1, "rotated %s", ("contoso.test",), None)
        line = JsonFormatter().format(record)
        assert "\n" not in line
        event = json.loads(line)
        assert event["msg"] == "rotated contoso.test"
        assert event["request_id"] == rid and event["slack_user"] == "U0ALICE"
        assert event["level"] == "info" and event["logger"] == "bot.x"
    finally:
        REQUEST_ID.reset(token)


FORGED = 'cancel x\n2026-12-07 12:00:00,000 INFO bot.services approved by U0BOB {"msg": "forged"}\r\x1b[2J\u2028end'


def _record(message: str, *args: object, exc: bool = False) -> logging.LogRecord:
    exc_info = None
    if exc:
        try:
            raise ValueError(FORGED)
        except ValueError:
            exc_info = sys.exc_info()
    return logging.LogRecord("bot.x", logging.WARNING, __file__, 1, message, args, exc_info)


def test_text_a_person_typed_never_starts_or_forges_a_line_in_either_format() -> None:
    for formatter in (JsonFormatter(), TextFormatter()):
        line = formatter.format(_record("refused: %s", FORGED))
        assert "\n" not in line and "\r" not in line and "\x1b" not in line and "\u2028" not in line
    json_line = JsonFormatter().format(_record("refused: %s", FORGED))
    assert json.loads(json_line)["msg"] == f"refused: {FORGED}"  # escaped, and read back as it was
    text_line = TextFormatter().format(_record("refused: %s", FORGED))
    assert text_line.endswith(
        "refused: cancel x\\n2026-12-07 12:00:00,000 INFO bot.services approved by U0BOB "
        '{"msg": "forged"}\\r\\x1b[2J\\u2028end'
    )


def test_a_traceback_in_the_text_format_is_marked_as_its_events_whatever_its_message_holds() -> None:
    line = TextFormatter().format(_record("the sign-in failed", exc=True))
    first, *trace = line.split("\n")
    assert first.endswith("the sign-in failed") and trace
    assert all(part.startswith("    | ") for part in trace)
    # the exception's words, line by line, each marked: none reads as an event of its own
    assert "    | ValueError: cancel x" in trace
    assert any(part.startswith("    | 2026-12-07 12:00:00,000 INFO bot.services approved by U0BOB") for part in trace)
