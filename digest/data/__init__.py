"""Data files shipped with digest (the default taxonomy)."""

__all__: list[str] = []  # a namespace: import the modules themselves
