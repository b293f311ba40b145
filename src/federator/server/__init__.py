"""The federator process: gRPC services, cluster registry, reconcile loop, job store."""
