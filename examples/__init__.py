"""Example data shipped with digest so `digest demo` runs offline."""
