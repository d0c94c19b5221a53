"""digest: self-hosted trending papers in your inbox."""

__all__ = ["__version__"]

__version__ = "0.1.0"
