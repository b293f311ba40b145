"""`helm upgrade --reuse-values` from an older chart's values still renders a pod that starts.

With --reuse-values helm renders the new templates with the old release's values in place of
the new chart's values.yaml (upgrade.go: `chart.Values = oldVals`), so a value the new chart
added is missing, not defaulted: every template must read new values with their default. The
fixtures in previous_values/ are older charts' values.yaml, as helm would reuse them; the
rendered flags are parsed by federator's own parser, so `--settle-seconds=<no value>` fails here
and not in a crash-looping pod.
"""

from __future__ import annotations

import contextlib
import io
import shutil
from pathlib import Path
from typing import Any

import pytest
from helm_support import AGENT, FEDERATOR, Helm, by_kind, containers

from federator.cli import build_parser

PREVIOUS = Path(__file__).parent / "previous_values"
CASES = [pytest.param(FEDERATOR if path.name.startswith("federator@") else AGENT, path, id=path.stem)
         for path in sorted(PREVIOUS.glob("*.yaml"))]
AGENT_REQUIRED = ["--set", "federator.address=federator.example.net:7070", "--set", "cluster.name=west-1",
                  "--set", "cluster.region=west"]


@pytest.fixture(scope="module")
def h(helm: Path) -> Helm:
    return Helm(helm)


def _with_old_values(chart: Path, values: Path, tmp_path: Path) -> Path:
    """The new chart with the old release's values in place of its values.yaml, as --reuse-values has it."""
    copy = tmp_path / chart.name
    shutil.copytree(chart, copy, symlinks=False)  # files/ links to deploy/prometheus and deploy/grafana
    shutil.copyfile(values, copy / "values.yaml")
    return copy


def _args(c: dict[str, Any]) -> Any:
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        try:
            return build_parser().parse_args(c["args"])
        except SystemExit:
            pytest.fail(f"federator refuses the rendered args {c['args']}:\n{err.getvalue()}")


def test_there_are_old_values_of_both_charts() -> None:
    assert {p.values[0] for p in CASES} == {FEDERATOR, AGENT}


@pytest.mark.parametrize(("chart", "values"), CASES)
def test_reused_old_values_render_flags_the_process_accepts(h: Helm, chart: Path, values: Path,
                                                            tmp_path: Path) -> None:
    extra = AGENT_REQUIRED if chart == AGENT else []
    docs = h.template(_with_old_values(chart, values, tmp_path), *extra)
    [c] = containers(docs)
    args = _args(c)
    assert "<no value>" not in " ".join(c["args"])
    if chart == FEDERATOR:
        assert args.settle_seconds == 10.0  # added later: its values.yaml default
        assert "--audit-log=-" in c["args"]  # added later: on, to stdout, as values.yaml says
        assert by_kind(docs, "NetworkPolicy") == []  # added later: off
    else:
        assert args.gang_timeout == 120.0 and args.fence_after == 0.0
        assert args.namespace == "federator-workloads"  # the old empty value means the new default
        assert [d["metadata"]["name"] for d in by_kind(docs, "Namespace")] == ["federator-workloads"]


def test_reused_values_take_new_settings_given_with_them(h: Helm, tmp_path: Path) -> None:
    """`--reuse-values --set networkPolicy.enabled=true`: a new value set on the upgrade is used."""
    old = PREVIOUS / "federator@7fa2b87.yaml"
    docs = h.template(_with_old_values(FEDERATOR, old, tmp_path), "--set", "networkPolicy.enabled=true",
                      "--set", "federator.settleSeconds=0")
    assert len(by_kind(docs, "NetworkPolicy")) == 1
    assert _args(containers(docs)[0]).settle_seconds == 0.0  # 0 is a value, not a missing one
