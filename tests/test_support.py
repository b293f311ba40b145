"""`support.eventually`: what a timed-out wait says, and when it works that out."""

from __future__ import annotations

import pytest

from support import eventually


def test_a_callable_what_is_built_only_when_the_wait_times_out_and_shows_the_end_state() -> None:
    polls: list[int] = []
    described: list[int] = []

    def poll() -> bool:
        polls.append(1)
        return False

    def what() -> str:
        described.append(len(polls))
        return f"state after {len(polls)} polls"

    with pytest.raises(AssertionError) as err:
        eventually(poll, timeout=0.35, what=what)
    assert described == [len(polls)] and len(polls) > 1  # once, after the last poll: the end state
    assert f"waiting for state after {len(polls)} polls; last: False" in str(err.value)


def test_a_callable_what_is_not_called_when_the_condition_holds() -> None:
    def what() -> str:
        raise AssertionError("built although nothing timed out")

    assert eventually(lambda: 42, timeout=1, what=what) == 42


def test_a_plain_string_what_still_works_and_a_failing_description_does_not_hide_the_timeout() -> None:
    with pytest.raises(AssertionError, match=r"timed out after 0.1s waiting for the thing; last: 0"):
        eventually(lambda: 0, timeout=0.1, what="the thing")

    def broken() -> str:
        raise RuntimeError("cluster gone")

    with pytest.raises(AssertionError, match=r"waiting for <describing the condition failed: "
                                             r"RuntimeError\('cluster gone'\)>; last: None"):
        eventually(lambda: None, timeout=0.1, what=broken)
