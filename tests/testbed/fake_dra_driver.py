"""A fake DRA driver: real ``resource.k8s.io/v1`` objects, fake devices.

A real DRA driver (for example NVIDIA's ``gpu.nvidia.com``) runs a kubelet
plugin on every node that publishes the node's devices as a ResourceSlice and
prepares allocated devices for containers. kwok plays the kubelet here, so
there is nothing to prepare; what remains is the API side, which this process
does for real against the member's kube-apiserver:

* a DeviceClass named after the driver, selecting its GPUs by CEL
  (``device.driver == "<driver>" && device.attributes["<driver>"].type == "gpu"``);
* one ResourceSlice per node (pool = node name, ``nodeName`` set), listing the
  node's devices with their attributes and capacity, as the NVIDIA driver does;
* it keeps them there: a deleted or edited slice is re-published with the next
  pool generation, as a driver must (KEP-4381).

kube-scheduler's DynamicResources plugin (on by default since DRA went GA in
1.34) allocates ResourceClaims against these slices; the kube-controller-manager's
``resourceclaim-controller`` makes claims from a pod's ResourceClaimTemplates.

Usage (the test bed starts it for every member with DRA nodes)::

    python3 fake_dra_driver.py --server URL --token TOKEN --ca-file CA \\
        --driver gpu.nvidia.com --devices devices.json [--once]

``devices.json`` maps node name -> list of device entries (``DraDevice.manifest()``).
Only the standard library is used.
"""

from __future__ import annotations

import argparse
import json
import signal
import ssl
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from typing import Any

API = "/apis/resource.k8s.io/v1"
MANAGED_BY = "federator-testbed-fake-dra-driver"


class Client:
    """Just enough of a Kubernetes client: JSON over HTTPS with a bearer token."""

    def __init__(self, server: str, token: str, ca_file: str) -> None:
        self.server, self.token = server.rstrip("/"), token
        self.ctx = ssl.create_default_context(cafile=ca_file)

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.server + path, data=data, method=method)
        req.add_header("Authorization", f"Bearer {self.token}")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, context=self.ctx, timeout=10) as resp:
                return resp.status, json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as e:
            raw = e.read()
            try:
                return e.code, json.loads(raw)
            except ValueError:
                return e.code, raw.decode(errors="replace")


def device_class(driver: str) -> dict[str, Any]:
    expr = f'device.driver == "{driver}" && device.attributes["{driver}"].type == "gpu"'
    return {"apiVersion": "resource.k8s.io/v1", "kind": "DeviceClass",
            "metadata": {"name": driver, "labels": {"app.kubernetes.io/managed-by": MANAGED_BY}},
            "spec": {"selectors": [{"cel": {"expression": expr}}]}}


def slice_name(driver: str, node: str) -> str:
    return f"{node}-{driver.replace('.', '-')}"[:253]


def resource_slice(driver: str, node: str, devices: Sequence[Mapping[str, Any]], generation: int) -> dict[str, Any]:
    return {"apiVersion": "resource.k8s.io/v1", "kind": "ResourceSlice",
            "metadata": {"name": slice_name(driver, node), "labels": {"app.kubernetes.io/managed-by": MANAGED_BY}},
            "spec": {"driver": driver, "nodeName": node,
                     "pool": {"name": node, "generation": generation, "resourceSliceCount": 1},
                     "devices": [dict(d) for d in devices]}}


def _same_devices(current: Mapping[str, Any], devices: Sequence[Mapping[str, Any]]) -> bool:
    return json.dumps(current.get("spec", {}).get("devices"), sort_keys=True) == json.dumps(list(devices),
                                                                                            sort_keys=True)


def reconcile(client: Client, driver: str, nodes: Mapping[str, Sequence[Mapping[str, Any]]]) -> list[str]:
    """Make the DeviceClass and one slice per node exist as specified; return what was changed."""
    changed = []
    status, _ = client.call("GET", f"{API}/deviceclasses/{driver}")
    if status == 404:
        status, body = client.call("POST", f"{API}/deviceclasses", device_class(driver))
        if status not in (200, 201, 409):
            raise RuntimeError(f"creating DeviceClass {driver}: HTTP {status}: {body}")
        changed.append(f"deviceclass/{driver}")
    for node, devices in nodes.items():
        name = slice_name(driver, node)
        status, current = client.call("GET", f"{API}/resourceslices/{name}")
        if status == 200 and _same_devices(current, devices):
            continue
        if status == 200:  # edited behind our back: publish the next generation of the pool
            generation = int(current["spec"]["pool"].get("generation", 0)) + 1
            body = resource_slice(driver, node, devices, generation)
            body["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
            status, reply = client.call("PUT", f"{API}/resourceslices/{name}", body)
        else:
            status, reply = client.call("POST", f"{API}/resourceslices", resource_slice(driver, node, devices, 1))
        if status not in (200, 201, 409):
            raise RuntimeError(f"publishing ResourceSlice {name}: HTTP {status}: {reply}")
        changed.append(f"resourceslice/{name}")
    return changed


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--server", required=True)
    p.add_argument("--token", required=True)
    p.add_argument("--ca-file", required=True)
    p.add_argument("--driver", required=True)
    p.add_argument("--devices", required=True, help="JSON file: node name -> device entries")
    p.add_argument("--interval", type=float, default=2.0)
    p.add_argument("--once", action="store_true", help="publish and exit")
    args = p.parse_args(argv)
    with open(args.devices) as fh:
        nodes = json.load(fh)
    client = Client(args.server, args.token, args.ca_file)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    last_error = ""
    while True:
        try:
            for what in reconcile(client, args.driver, nodes):
                print(f"fake-dra-driver: published {what}", flush=True)
            last_error = ""
        except (OSError, RuntimeError) as e:  # the apiserver may be starting or stopping
            if str(e) != last_error:  # once per distinct error, not every interval
                print(f"fake-dra-driver: {e}", file=sys.stderr, flush=True)
            last_error = str(e)
        if args.once or stop.wait(args.interval):
            return 0


if __name__ == "__main__":
    sys.exit(main())
