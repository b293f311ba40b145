"""The one merge of an alternative's pod template over a job's, and who may import it."""

from __future__ import annotations

import ast
from pathlib import Path

import federator
from federator.podtemplates import containers_of, merged_over

SRC = Path(federator.__file__).parent


def test_an_alternatives_container_overrides_the_jobs_by_position_and_keeps_the_rest() -> None:
    base = {"spec": {"containers": [{"name": "main", "image": "cuda", "args": ["train"]}, {"name": "side"}],
                     "hostIPC": False}}
    over = {"spec": {"containers": [{"image": "cann"}]}}
    assert merged_over(base, over) == {"spec": {"containers": [{"name": "main", "image": "cann", "args": ["train"]},
                                                               {"name": "side"}], "hostIPC": False}}


def test_a_named_override_container_merges_into_the_one_of_its_name_wherever_it_is() -> None:
    """Outside testers (F5): by position, `[{name: trainer}]` over `[sidecar, trainer]` renamed the sidecar."""
    base = {"spec": {"containers": [{"name": "sidecar", "image": "log"}, {"name": "trainer", "image": "cuda"}],
                     "initContainers": [{"name": "fetch", "image": "curl"}]}}
    over = {"spec": {"containers": [{"name": "trainer", "image": "rocm"}],
                     "initContainers": [{"name": "warm", "image": "w"}]}}
    assert merged_over(base, over) == {"spec": {
        "containers": [{"name": "sidecar", "image": "log"}, {"name": "trainer", "image": "rocm"}],
        "initContainers": [{"name": "fetch", "image": "curl"}, {"name": "warm", "image": "w"}]}}  # submit refuses it


def test_the_submit_check_imports_no_backend() -> None:
    """The federator checks what a member renders without importing the member's code: both merge alike
    through this module (only the server's Kubernetes mode, app.py, reaches into backends.kube)."""
    path = SRC / "server" / "templates.py"
    bad = [node.module for node in ast.walk(ast.parse(path.read_text()))
           if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("federator.backends")]
    assert not bad, bad


def test_the_one_container_walk_passes_over_what_is_not_a_container() -> None:
    """Every check of a pod's containers walks them through `containers_of`; a user's template may hold anything, so
    a list or an item of the wrong type is passed over there (shape_problems names it), never a traceback."""
    pod = {"containers": [{"name": "a"}, "oops", None, {"name": "b"}], "initContainers": {"not": "a list"},
           "ephemeralContainers": [{"name": "debug"}]}
    assert [(k, i, c["name"]) for k, i, c in containers_of(pod)] == [
        ("containers", 0, "a"), ("containers", 3, "b"), ("ephemeralContainers", 0, "debug")]
    assert [c["name"] for _, _, c in containers_of(pod, ("ephemeralContainers",))] == ["debug"]
    assert list(containers_of({})) == []
