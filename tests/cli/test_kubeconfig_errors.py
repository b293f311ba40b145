"""A --kubeconfig that is not one is refused in one line naming the flag and the problem, no traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from support import federator_cli


@pytest.mark.parametrize(("text", "said"), [
    ("garbage: [\n", "not valid YAML: expected the node content, but found '<stream end>' (line 2, column 1)"),
    ("hello\n", "not a kubeconfig (a YAML mapping of clusters, contexts and users)"),
    ("[1, 2]\n", "not a kubeconfig (a YAML mapping of clusters, contexts and users)"),
    ("clusters: 5\n", "not a kubeconfig (a YAML mapping of clusters, contexts and users)"),
    ("{}\n", "Invalid kube-config file. Expected key current-context"),
])
def test_the_agent_names_what_is_wrong_with_its_kubeconfig(tmp_path: Path, text: str, said: str) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(text)
    out = federator_cli("agent", "--cluster", "x", "--region", "r", "--insecure", "--kubeconfig", str(kubeconfig))
    assert out.returncode == 2
    assert "Traceback" not in out.stderr, out.stderr
    assert out.stderr.startswith(f"federator agent: --kubeconfig: cannot load kubeconfig {kubeconfig}: {said}")
    assert len(out.stderr.strip().splitlines()) == 1
