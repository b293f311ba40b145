"""Kubernetes adapters: capacity from Nodes and Pods, workloads from placements, the CRD controller.

Pure parts (`capacity`, `workloads`, `resources`) take and return plain dicts
and domain types and are unit-tested without a cluster; the I/O parts
(`api`, `informer`, `backend`, `store`, `controller`, `leader`) sit at the edge
and are tested against real API servers (tests/kube, tests/testbed).
"""
