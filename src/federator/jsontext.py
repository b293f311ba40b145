"""What is wrong with a JSON text a client sent, in one line.

The job API carries a pod template and a user's workload object as JSON text inside the proto
(`pod_template_json`, `workload_json`). Python's json module answers a malformed or hostile one with
exceptions a client should never see: a RecursionError for `[[[[...]]]]` a hundred thousand deep, a
ValueError about `sys.set_int_max_str_digits` for a 5,000-digit number, and it accepts `NaN`,
`Infinity` and lone UTF-16 surrogates (`"\\ud800"`), which are not JSON (RFC 8259) and which an
agent's strict parser, in another language, would choke on when the text arrives in a Launch. So the
text is read here once, with each of those named as the problem.

A value inside such a text is read here too where the reading is JSON's, not one workload's: a number as the
API server stores it in an integer field (`whole_number`), which the elastic policy's check and every workload
adapter's replica counts read alike.
"""

from __future__ import annotations

import json
import re

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKET = re.compile(r"[\[\]{}]")


class JsonTextError(ValueError):
    """A JSON text that is not one the federator reads; the message says why, in one line."""


def _no_constant(name: str) -> object:
    raise JsonTextError(f"{name} is not JSON (RFC 8259 has no NaN or Infinity)")


def _depth_problem(text: str, max_depth: int) -> str:
    """Counted on the brackets outside strings, before parsing: a deep text must not reach the parser's
    recursion at all."""
    depth = 0
    for m in _BRACKET.finditer(_STRING.sub("", text)):
        if m.group() in "[{":
            depth += 1
            if depth > max_depth:
                return f"nested more than {max_depth} levels deep"
        else:
            depth -= 1
    return ""


def load_json(text: str, *, max_depth: int) -> object:
    """The value of `text`; JsonTextError naming the problem when it is not strict JSON of at most
    `max_depth` levels."""
    problem = _depth_problem(text, max_depth)
    if problem:
        raise JsonTextError(problem)
    try:
        value = json.loads(text, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise JsonTextError(f"not JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})") from exc
    except RecursionError as exc:  # pragma: no cover - the bracket count comes first
        raise JsonTextError(f"nested more than {max_depth} levels deep") from exc
    except JsonTextError:
        raise
    except ValueError as exc:  # the int-to-str digit limit of CPython
        if "digits" in str(exc):
            raise JsonTextError("holds a number of more than 4300 digits") from exc
        raise JsonTextError(f"not JSON: {' '.join(str(exc).split())[:200]}") from exc
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as exc:
        raise JsonTextError("holds an unpaired UTF-16 surrogate escape (such as \\ud800), which is not Unicode "
                            "text") from exc
    return value


def whole_number(value: object) -> int | None:
    """A JSON number as the API server stores it in an integer field: an integer, or a float of a whole value
    (`8.0` is stored as 8); None for anything else (a string, a bool, 8.5). Read so, `maxReplicas: 8.0` passed the
    check as "not an integer" and the member's operator got 8 (outside QA new60, N2)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    return int(value) if isinstance(value, float) and value.is_integer() else None


__all__ = ["JsonTextError", "load_json", "whole_number"]
