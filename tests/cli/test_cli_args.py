"""The command line takes `get`'s job name before or after the flags, as `cancel` does."""

from __future__ import annotations

import pytest

from federator.cli import _parsed, build_parser


@pytest.mark.parametrize("argv", [
    ["get", "jobs", "myjob", "--insecure", "--server", "h:1"],
    ["get", "jobs", "--insecure", "--server", "h:1", "myjob"],  # refused: "unrecognized arguments: myjob"
    ["get", "jobs", "--server", "h:1", "myjob", "-o", "wide"],
])
def test_get_takes_the_name_before_or_after_the_flags(argv: list[str]) -> None:
    args = _parsed(build_parser(), argv)
    assert (args.what, args.name, args.server) == ("jobs", "myjob", "h:1")


@pytest.mark.parametrize("argv", [["get", "jobs", "--server", "h:1", "a", "b"], ["get", "jobs", "--bogus"],
                                  ["logs", "x", "y"]])
def test_anything_else_left_over_is_still_an_error(argv: list[str]) -> None:
    with pytest.raises(SystemExit):
        _parsed(build_parser(), argv)


@pytest.mark.parametrize(("argv", "prog"), [
    (["get", "jobs", "a", "b"], "federator get"),  # new58 N8: printed the top level's usage
    (["logs", "x", "y"], "federator logs"),  # `cancel x y` cancels both (cli/cancel.py)
    (["certs", "init", "--dir", "d", "extra"], "federator certs init"),  # a command's own sub-command
])
def test_a_left_over_argument_is_refused_with_its_commands_usage(
        argv: list[str], prog: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        _parsed(build_parser(), argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(f"usage: {prog} ")
    assert f"{prog}: error: unrecognized arguments: {argv[-1]}" in err
    assert "COMMAND ..." not in err
