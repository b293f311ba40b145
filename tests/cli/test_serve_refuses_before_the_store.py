"""`serve` judges its inputs before it opens the job store: a refused start leaves no store behind.

Outside QA, tenants F5 (repro/policy_errors.sh): `serve --db x.db --policy bad.yaml` logged "creating a new, empty
job store at x.db", then refused the policy, and left x.db and x.db.lock behind; with a typo in --db too, the
litter was taken for the store at the next start.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from support import federator_cli


@pytest.mark.parametrize(("policy", "said"), [
    pytest.param("queues:\n  org-0537: {weight: heavy}\n", "queues.org-0537.weight: must be a positive number",
                 id="scheduling"),
    pytest.param("tenancy: {admins: 7}\n", "tenancy", id="tenancy"),
])
def test_a_refused_policy_leaves_no_store(tmp_path: Path, policy: str, said: str) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(policy)
    work = tmp_path / "run"
    work.mkdir()
    out = federator_cli("serve", "--insecure", "--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0",
                        "--db", str(work / "x.db"), "--policy", str(path))
    assert out.returncode != 0
    assert "Traceback" not in out.stderr, out.stderr
    assert said in out.stderr and "--policy" in out.stderr, out.stderr
    assert "creating a new, empty job store" not in out.stderr
    assert sorted(p.name for p in work.iterdir()) == []


def test_a_refused_token_file_leaves_no_store(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text("not a token line\n")
    work = tmp_path / "run"
    work.mkdir()
    out = federator_cli("serve", "--insecure", "--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0",
                        "--db", str(work / "x.db"), "--token-file", str(tokens))
    assert out.returncode != 0 and "--token-file" in out.stderr, out.stderr
    assert sorted(p.name for p in work.iterdir()) == []
