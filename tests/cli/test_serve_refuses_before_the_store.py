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


def test_a_pending_cap_too_small_for_the_declared_queues_is_said_at_start(tmp_path: Path) -> None:
    """Outside re-test N2: with 31 queues and `--max-pending-jobs 100`, two floods locked out 17 organisations
    holding nothing, each refused with a bare "queue is full", and the start had said nothing. The last tenth keeps
    room for every declared queue only when the cap is at least ten times the declared queues plus ten: below that,
    the start says so (here before a store it cannot read ends it)."""
    policy = tmp_path / "policy.yaml"
    policy.write_text("queues:\n" + "".join(f"  org-{i:04d}: {{weight: 1}}\n" for i in range(31)))
    db = tmp_path / "x.db"
    db.write_text("not a job store")  # so the start ends once it has said what it says before the store
    out = federator_cli("serve", "--insecure", "--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0",
                        "--db", str(db), "--policy", str(policy), "--max-pending-jobs", "100")
    assert out.returncode != 0, out.stderr
    assert "--max-pending-jobs 100 is below ten times the 31 declared queues plus ten (320)" in out.stderr, out.stderr
    roomy = federator_cli("serve", "--insecure", "--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0",
                          "--db", str(db), "--policy", str(policy), "--max-pending-jobs", "320")
    assert roomy.returncode != 0 and "below ten times" not in roomy.stderr, roomy.stderr
