import json
import logging

from bot.observability.logs import REQUEST_ID, JsonFormatter, new_request_id, set_user


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
