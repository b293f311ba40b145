"""`federator sim` says a workload's many problems as the first few, one a line, and the count (problem_lines).

Outside QA, planners P10: 262 documents with a negative `federator.io/sim-duration` gave one error line of about
17,000 characters (the first 100 problems joined by "; ").
"""

from __future__ import annotations

from pathlib import Path

from support import EXAMPLES, federator_cli


def jobs(n: int) -> str:
    return "---\n".join(
        "apiVersion: federator.io/v1alpha1\nkind: FederatedJob\n"
        f"metadata: {{name: j{i:05d}, annotations: {{federator.io/sim-duration: '-{i + 1}s'}}}}\n"
        "spec: {kind: training, replicas: 1, resources: {nvidia.com/gpu: 1, cpu: '1', memory: 1Gi},\n"
        "       template: {spec: {containers: [{name: t, image: x}]}}}\n" for i in range(n))


def sim(workload: Path) -> list[str]:
    out = federator_cli("sim", "--fleet", str(EXAMPLES / "fleet.yaml"), "--workload", str(workload))
    assert out.returncode == 2 and "Traceback" not in out.stderr
    return out.stderr.splitlines()


def test_a_workload_of_many_bad_documents_says_the_first_few_one_a_line_and_the_count(tmp_path: Path) -> None:
    (tmp_path / "week.yaml").write_text(jobs(262))
    lines = sim(tmp_path / "week.yaml")
    assert lines[0] == f"federator sim: {tmp_path / 'week.yaml'}: 262 problems; the first 5:"
    assert lines[1] == ("  document 1 (j00000): metadata.annotations[federator.io/sim-duration]: must be a duration "
                        "such as '30s', '2m', '500ms' or '1.5' (seconds), got '-1s'")
    assert [line.split(":")[0] for line in lines[1:6]] == [f"  document {i} (j0000{i - 1})" for i in range(1, 6)]
    assert lines[6:] == ["  and 257 more"]  # was one line of the first 100, ~17,000 characters
    assert max(map(len, lines)) < 200


def test_a_few_problems_stay_one_line(tmp_path: Path) -> None:
    (tmp_path / "two.yaml").write_text(jobs(2))
    (line,) = sim(tmp_path / "two.yaml")
    assert line.startswith(f"federator sim: {tmp_path / 'two.yaml'}: document 1 (j00000): ")
    assert "; document 2 (j00001): " in line
