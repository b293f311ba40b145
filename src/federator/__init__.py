"""federator: a multi-cluster scheduler for AI training and inference jobs."""

__version__ = "0.21.0"
__all__ = ["__version__"]
