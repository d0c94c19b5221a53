"""Alembic environment: runs against the connection ``Store.migrate`` hands over."""

from alembic import context

from digest.store.schema import declared, metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",  # SQLite cannot ALTER most things
    compare_type=True,
    include_name=declared,  # the search index is per database, outside the declared tables
)
with context.begin_transaction():
    context.run_migrations()
