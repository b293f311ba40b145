"""The real CRDs of the workload kinds users bring, from each controller's own Go module.

`go mod download` fetches a module once into the Go module cache (the test
bed's build fills the same cache), and each module ships its CRDs: the schema
the API server checks an object against is exactly the controller's.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
from pathlib import Path

# kind -> (module, version, CRD file inside the module)
MODULES: dict[str, tuple[str, str, str]] = {
    "JobSet": ("sigs.k8s.io/jobset", "v0.10.1", "config/components/crd/bases/jobset.x-k8s.io_jobsets.yaml"),
    "LeaderWorkerSet": ("sigs.k8s.io/lws", "v0.7.0", "config/crd/bases/leaderworkerset.x-k8s.io_leaderworkersets.yaml"),
    "TrainJob": ("github.com/kubeflow/trainer/v2", "v2.0.0", "manifests/base/crds/trainer.kubeflow.org_trainjobs.yaml"),
    # Kueue v0.17.0 integrates with these versions of the training operator and KubeRay.
    "PyTorchJob": ("github.com/kubeflow/training-operator", "v1.9.3",
                   "manifests/base/crds/kubeflow.org_pytorchjobs.yaml"),
    "RayJob": ("github.com/ray-project/kuberay/ray-operator", "v1.6.0", "config/crd/bases/ray.io_rayjobs.yaml"),
}


@functools.cache
def module_dir(module: str, version: str) -> Path:
    env = {**os.environ, "GOFLAGS": "-mod=mod", "GOTOOLCHAIN": "local"}
    out = subprocess.run(["go", "mod", "download", "-json", f"{module}@{version}"], capture_output=True, text=True,
                         timeout=600, env=env, cwd="/")
    info = json.loads(out.stdout or "{}")
    if out.returncode or not info.get("Dir"):
        raise RuntimeError(f"go mod download {module}@{version}: {info.get('Error') or out.stderr}")
    return Path(info["Dir"])


def crd_file(kind: str) -> Path:
    module, version, path = MODULES[kind]
    return module_dir(module, version) / path


__all__ = ["MODULES", "crd_file", "module_dir"]
