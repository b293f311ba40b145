"""The agent process: one per member cluster, dials out to the federator."""
