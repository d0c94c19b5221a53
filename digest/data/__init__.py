"""Data files shipped with digest (the default taxonomy)."""
