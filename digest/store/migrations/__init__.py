"""Alembic migrations of the digest schema (run by ``Store.migrate``; no ini file needed)."""
