"""One line of ``kerberos-bot check``: a part, whether it works, what was found, and how to fix it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool
    detail: str
    fix: str = ""

    def line(self) -> str:
        mark = "ok  " if self.ok else "FAIL"
        text = f"[{mark}] {self.name:<28} {self.detail}"
        return text + (f"\n       fix: {self.fix}" if self.fix else "")
