"""The house rules a reviewer would otherwise check by hand: lint clean and mypy clean."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def _run(*cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_ruff_finds_nothing() -> None:
    proc = _run(str(BIN / "ruff"), "check", "--no-cache", "src", "tests", "scripts", "bench", "setup.py")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_mypy_finds_nothing() -> None:
    proc = _run(sys.executable, "-m", "mypy", "--cache-dir", str(ROOT / ".mypy_cache"))
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_the_federator_state_machine_stays_small_and_submit_lives_in_intake() -> None:
    """House rule: do not grow `server/federator.py`; the submit path is a module of its own (server/intake.py)."""
    source = (ROOT / "src/federator/server/federator.py").read_text()
    assert len(source.splitlines()) < 560, "server/federator.py grew: put the new concern in a module of its own"
    assert "def _admit" not in source and "class SubmitError" not in source


def test_every_test_module_has_a_name_of_its_own() -> None:
    """The test folders are not packages, so pytest imports each module by its file name: two files of one
    name in two folders pass alone and stop `make test` at collection (it happened: tests/kube and
    tests/backends/kube both had test_kube_tenant_namespaces.py)."""
    seen: dict[str, list[str]] = {}
    for path in sorted((ROOT / "tests").rglob("test_*.py")):
        seen.setdefault(path.name, []).append(str(path.relative_to(ROOT)))
    assert {name: paths for name, paths in seen.items() if len(paths) > 1} == {}


def test_the_charts_run_the_image_of_this_version() -> None:
    """A chart's image tag defaults to its appVersion. It stayed 0.1.0 while the code moved on: `helm upgrade`
    then ran the old image (IfNotPresent, cached on the nodes) with the new chart's flags, and the federator and
    every agent crash-looped on `unrecognized arguments` (outside operator QA). The package, `--version`,
    federator_build_info and both charts' appVersion are one number."""
    import tomllib

    import yaml

    from federator import __version__

    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert __version__ == version
    for chart in ("federator", "federator-agent"):
        meta = yaml.safe_load((ROOT / "deploy" / "helm" / chart / "Chart.yaml").read_text())
        assert meta["appVersion"] == version, f"deploy/helm/{chart}/Chart.yaml appVersion"


def _import_graph() -> dict[str, set[str]]:
    """Each module of src/federator and the modules of src/federator it imports, wherever the import stands (at
    the top, in a function, in a try), but for those under `if TYPE_CHECKING:`, which never run. `from pkg import
    mod` is an edge to pkg.mod alone: the package is already loading when its child runs."""
    import ast

    src = ROOT / "src"
    modules: dict[str, Path] = {}
    for path in src.rglob("*.py"):
        parts = list(path.relative_to(src).with_suffix("").parts)
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path

    def typing_only(node: ast.AST) -> bool:
        return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)

    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        deps: set[str] = set()
        stack: list[ast.AST] = [ast.parse(path.read_text())]
        while stack:
            node = stack.pop()
            if typing_only(node):
                continue
            stack.extend(ast.iter_child_nodes(node))
            if isinstance(node, ast.Import):
                deps.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*up, base] if base else up)
                deps.update(f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names)
        graph[name] = {d for d in deps if d in modules and d != name}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_no_import_cycles_not_even_deferred_ones() -> None:
    """No two modules import each other, directly or round a loop, not even through an import deferred into a
    function body: that hides a cycle from the linter and leaves it to break the day someone hoists the import.
    Two were untangled before (backends/kube/host.py <-> options.py, backends/kube/main.py <-> cli/agent.py)
    and three deferred ones after (server/rebalancing.py <-> scheduling.py, server/drain_surge.py <->
    drains.py, simulate/traces.py <-> job_records.py): the shared piece moves to a module both import."""
    graph = _import_graph()
    assert "federator.security.pki" in graph["federator.cli.certs"], "a deferred import (certs._init's) is an edge"
    assert _cycles(graph) == []


def test_the_cycle_finder_finds_a_deferred_cycle() -> None:
    """The check above is only as good as its finder: a loop of three, closed by a deferred import, is found."""
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_every_configuration_dataclass_is_frozen() -> None:
    """A dataclass named *Config, *Options, *Args, *Settings or *Spec is what a process or a job was given: shared
    by every part that reads it, so frozen (house style), and mypy then refuses a part that writes to it.
    AgentConfig was the one that was not (agent/config.py)."""
    import ast

    def frozen(decorator: ast.expr) -> bool:
        return isinstance(decorator, ast.Call) and any(
            k.arg == "frozen" and isinstance(k.value, ast.Constant) and k.value.value is True
            for k in decorator.keywords)

    def is_dataclass(decorator: ast.expr) -> bool:
        target = decorator.func if isinstance(decorator, ast.Call) else decorator
        return isinstance(target, ast.Name) and target.id == "dataclass"

    thawed = []
    for path in sorted((ROOT / "src/federator").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.ClassDef)
                    and node.name.endswith(("Config", "Options", "Args", "Settings", "Spec"))
                    and any(is_dataclass(d) for d in node.decorator_list)
                    and not any(frozen(d) for d in node.decorator_list)):
                thawed.append(f"{path.relative_to(ROOT)}: {node.name}")
    assert thawed == []


# Public names of src/federator with "gpu" in them that mean NVIDIA's own words (its resource, its node label),
# or that the simulator's FGD model and trace generator keep from the paper and the Alibaba trace they follow.
GPU_NAMES_ALLOWED = {
    "src/federator/backends/kube/capacity.py: GPU_RESOURCE",  # "nvidia.com/gpu"
    "src/federator/backends/kube/capacity.py: GPU_PRODUCT_LABEL",  # "nvidia.com/gpu.product"
    "src/federator/backends/kube/devices.py: NVIDIA_GPU",
    "src/federator/backends/kube/devices.py: NVIDIA_SHARED_GPU",
    "src/federator/jobfile_accelerators.py: GPU_RESOURCE",  # moved from jobfile.py (review59 R11)
    "src/federator/backends/sim/fgd.py: TaskClass.gpus",
    "src/federator/simulate/synth.py: generate_mix(model_gpus)",
}


def test_no_new_public_name_says_gpu() -> None:
    """One name per concept: "accelerator", not "GPU", in names (a job may run on an Ascend NPU or an MLU). A
    public module constant, function, class, dataclass field or function parameter whose name says gpu is
    refused unless listed above with its reason; NodeView.capacity_gpus, UNKNOWN_GPU_MODEL (a second name for
    devices.UNKNOWN_MODEL) and node_views(gpu_label) were renamed. Wire and CRD names (gpuModels, gpus) are not
    Python names and stay, documented as old names."""
    import ast

    found = set()
    for path in sorted((ROOT / "src/federator").rglob("*.py")):
        if path.name.endswith(("_pb2.py", "_pb2_grpc.py")):
            continue
        rel = path.relative_to(ROOT)
        tree = ast.parse(path.read_text())
        for node in tree.body:
            targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(
                node, ast.AnnAssign) else []
            found |= {f"{rel}: {t.id}" for t in targets if isinstance(t, ast.Name) and not t.id.startswith("_")
                      and "gpu" in t.id.lower()}
        for node in ast.walk(tree):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) or node.name[0] == "_":
                continue
            if "gpu" in node.name.lower():
                found.add(f"{rel}: {node.name}")
            if isinstance(node, ast.ClassDef):
                found |= {f"{rel}: {node.name}.{b.target.id}" for b in node.body
                          if isinstance(b, ast.AnnAssign) and isinstance(b.target, ast.Name)
                          and "gpu" in b.target.id.lower()}
            else:
                arguments = [*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs]
                found |= {f"{rel}: {node.name}({a.arg})" for a in arguments if "gpu" in a.arg.lower()}
    assert found - GPU_NAMES_ALLOWED == set()


def test_the_scheduler_loads_no_io_library_even_through_what_it_imports() -> None:
    """tests/scheduler/test_purity.py reads the scheduler's own import lines; this loads every scheduler module in
    a fresh interpreter and looks at what came with them: a module the scheduler imports (model/, security/
    podsecurity.py, and whatever their packages' __init__ pull in) must not bring grpc, kubernetes, prometheus
    or sqlite either, or the simulator and the benchmarks run the scheduler with the server's I/O stack; nor
    cryptography, which security/__init__ once loaded with pki.py for every import of security/podsecurity.py
    (review59 R5)."""
    probe = ("import importlib, pkgutil, sys, federator.scheduler as s\n"
             "for m in pkgutil.iter_modules(s.__path__): importlib.import_module('federator.scheduler.' + m.name)\n"
             "print(' '.join(sorted({m.split('.')[0] for m in sys.modules})))")
    proc = _run(sys.executable, "-c", probe)
    assert proc.returncode == 0, proc.stderr
    loaded = set(proc.stdout.split())
    assert "federator" in loaded
    assert loaded & {"grpc", "kubernetes", "prometheus_client", "sqlite3", "_sqlite3", "cryptography"} == set()


def test_every_module_says_why_it_exists() -> None:
    """House style: a module opens with a docstring saying why it exists (the scheduler's are checked in
    tests/scheduler/test_purity.py; this holds every package to it). __main__.py was the one without."""
    import ast

    silent = [str(path.relative_to(ROOT)) for path in sorted((ROOT / "src/federator").rglob("*.py"))
              if not path.name.endswith(("_pb2.py", "_pb2_grpc.py"))
              and (tree := ast.parse(path.read_text())).body and not ast.get_docstring(tree)]
    assert silent == []
