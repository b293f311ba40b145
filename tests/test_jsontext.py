"""jsontext.load_json: a JSON text from a client is read once, and every way it can go wrong is named."""

from __future__ import annotations

import pytest

from federator.jsontext import JsonTextError, load_json


@pytest.mark.parametrize(("text", "problem"), [
    ("[" * 100_000 + "]" * 100_000, "nested more than 64 levels deep"),  # RecursionError before
    ('{"a":' * 65 + "1" + "}" * 65, "nested more than 64 levels deep"),
    ('{"x": NaN}', "NaN is not JSON"),
    ('{"x": -Infinity}', "-Infinity is not JSON"),
    ('{"x": ' + "9" * 5000 + "}", "holds a number of more than 4300 digits"),  # a ValueError on sys limits before
    ('{"x": "\\ud800"}', "unpaired UTF-16 surrogate"),
    ("{x", "not JSON: Expecting property name enclosed in double quotes (line 1, column 2)"),
    ("", "not JSON: Expecting value (line 1, column 1)"),
])
def test_a_text_that_is_not_strict_json_is_refused_naming_why(text: str, problem: str) -> None:
    with pytest.raises(JsonTextError) as err:
        load_json(text, max_depth=64)
    assert problem in str(err.value)


@pytest.mark.parametrize("text", [
    '{"a":' * 64 + "1" + "}" * 64,  # exactly the bound
    '{"brackets in a string": "[[[[{{{{' + "[" * 1000 + '", "esc": "\\"[["}',  # strings do not nest
    '{"ok": "\\ud83d\\ude00", "n": 1e308, "big": ' + "9" * 4000 + "}",  # a surrogate pair is a character
])
def test_strict_json_within_the_bound_reads_as_json_does(text: str) -> None:
    import json

    assert load_json(text, max_depth=64) == json.loads(text)
