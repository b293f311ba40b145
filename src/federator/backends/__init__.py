"""Where placements run: simulated clusters (`sim`) or real Kubernetes (`kube`)."""
