"""Block Kit as text, the way a person would read the message in Slack (for the demo console)."""

from __future__ import annotations

import re
import textwrap
from typing import Any

_EMOJI = {
    "large_green_circle": "[OK]",
    "large_yellow_circle": "[ATTENTION]",
    "red_circle": "[BROKEN]",
    "white_circle": "[ABSENT]",
    "grey_question": "[?]",
    "white_check_mark": "✓",
    "information_source": "i",
    "warning": "!",
    "rotating_light": "!!",
    "mag": "…",
    "hourglass_flowing_sand": "…",
    "hourglass": "…",
    "ballot_box_with_check": "☑",
    "closed_lock_with_key": "🔐",
    "satellite_antenna": "»",
    "no_entry": "✗",
    "no_entry_sign": "✗",
    "x": "✗",
    "gear": "⚙",
    "clock3": "◷",
    "inbox_tray": "»",
    "scroll": "»",
    "leftwards_arrow_with_hook": "↩",
}


def _mrkdwn(text: str) -> str:
    text = re.sub(r":([a-z0-9_+-]+):", lambda m: _EMOJI.get(m.group(1), m.group(0)), text)
    text = re.sub(r"(?<![\w*])\*([^*\n]+)\*", r"\1", text)
    text = re.sub(r"(?<![\w_])_([^_\n]+)_", r"\1", text)
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _text(obj: dict[str, Any] | None) -> str:
    if not obj:
        return ""
    return _mrkdwn(str(obj.get("text", ""))) if obj.get("type") == "mrkdwn" else str(obj.get("text", ""))


def render_message(message: dict[str, Any], width: int = 100) -> str:
    """Render ``{"text": ..., "blocks": [...]}`` as plain text."""
    blocks = message.get("blocks") or []
    if not blocks:
        return _mrkdwn(str(message.get("text", "")))
    out: list[str] = []
    for block in blocks:
        kind = block.get("type")
        if kind == "header":
            title = _text(block.get("text"))
            out += [title, "=" * min(len(title), width)]
        elif kind == "section":
            if block.get("text"):
                out.append(_text(block["text"]))
            fields = [_text(f) for f in block.get("fields") or []]
            for f in fields:
                name, _, value = f.partition("\n")
                line = f"  {name:<20} {value}"
                out.append(textwrap.shorten(line, width=width * 2, placeholder="…") if len(line) > width * 2 else line)
        elif kind == "context":
            out.append("  (" + " ".join(_text(e) for e in block.get("elements") or []) + ")")
        elif kind == "divider":
            out.append("-" * width)
        elif kind == "input":
            label = _text(block.get("label"))
            optional = " (optional)" if block.get("optional") else ""
            out.append(f"  {label}{optional}: [ {block.get('element', {}).get('type', 'input')} ]")
        elif kind == "actions":
            labels = [f"[ {_text(e.get('text'))} ]" for e in block.get("elements") or []]
            out.append("  " + "  ".join(labels))
        else:
            out.append(f"<{kind} block>")
    return "\n".join(out)
