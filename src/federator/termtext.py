"""Text from others made safe to print on a terminal: control characters shown, never obeyed.

A member's agent (possibly a third party's) writes a placement's message, which users read in
`federator get jobs -o wide`, `kubectl get fj` and logs. `\\x1b[2J` in it cleared their screen and a bell
rang; an OSC sequence could retitle the terminal or forge a link. The federator cleans such text where it
takes it (server/validation.py), and the CLI cleans every table cell again (cli/output.py): a server of
another version, or a store written before the cleaning, must not reach a terminal raw either. `shown` cuts a
value an error message quotes, so a message never echoes a huge input back.
"""

from __future__ import annotations

import re

# C0 (every one: a tab or line break in a table cell breaks its row too), DEL, and C1 (0x9b is a one-byte CSI).
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def visible(text: str) -> str:
    """`text` with each control character (C0, ESC among them, DEL, C1) written as its escape (`\\x1b`); any
    other Unicode kept as is."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


# What reorders or hides text without being a control character: the bidirectional embeddings, overrides and
# isolates (U+202A-202E, U+2066-2069, the marks U+200E, U+200F, U+061C), zero-width characters (U+200B-200D,
# U+2060, U+FEFF) and the line and paragraph separators (U+2028, U+2029, which end a table row as a line break
# does). In a member's message they can make a status read backwards ("Trojan Source").
_HIDDEN = re.compile("[\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]")


def cell(text: str) -> str:
    """`text` for a table cell on a terminal: `visible`, and each character that reorders or hides text written
    as its escape (`\\u202e`). The server keeps them (a name may need a joiner); a table shows them."""
    return _HIDDEN.sub(lambda m: f"\\u{ord(m.group()):04x}", visible(text))


def shown(value: object, limit: int = 80) -> str:
    """repr() of a value for an error message, cut to `limit` characters: a message never echoes a huge input.

    The count is the value's own length (a string's characters), not its repr's: the quotes made a 254-character
    name read "(256 characters)" beside a limit of 253 (outside QA, portal m1)."""
    text = repr(value)
    if len(text) <= limit:
        return text
    size = len(value) if isinstance(value, str) else len(text)
    return f"{text[:limit]}... ({size} characters)"


__all__ = ["cell", "shown", "visible"]
