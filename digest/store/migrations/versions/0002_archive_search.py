"""archive search: papers.search_text and a full-text index over it

Revision ID: 0002
Revises: 0001

SQLite: an FTS5 table over papers.search_text (external content, so the text is stored
once) kept in step by triggers. PostgreSQL: a GIN index on to_tsvector('simple', search_text).
Both index the words digest.store.search made, so both find the same papers.
"""

import sqlalchemy as sa
from alembic import op

from digest.models import Paper
from digest.store.search import paper_search_text

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

SQLITE_UP = (
    "CREATE VIRTUAL TABLE papers_search USING fts5(search_text, content='papers', "
    "content_rowid='id', tokenize='unicode61 remove_diacritics 0')",
    "CREATE TRIGGER papers_search_insert AFTER INSERT ON papers BEGIN "
    "INSERT INTO papers_search(rowid, search_text) VALUES (new.id, new.search_text); END",
    "CREATE TRIGGER papers_search_delete AFTER DELETE ON papers BEGIN "
    "INSERT INTO papers_search(papers_search, rowid, search_text) "
    "VALUES ('delete', old.id, old.search_text); END",
    "CREATE TRIGGER papers_search_update AFTER UPDATE OF search_text ON papers BEGIN "
    "INSERT INTO papers_search(papers_search, rowid, search_text) "
    "VALUES ('delete', old.id, old.search_text); "
    "INSERT INTO papers_search(rowid, search_text) VALUES (new.id, new.search_text); END",
)
SQLITE_DOWN = (
    "DROP TRIGGER IF EXISTS papers_search_update",
    "DROP TRIGGER IF EXISTS papers_search_delete",
    "DROP TRIGGER IF EXISTS papers_search_insert",
    "DROP TABLE IF EXISTS papers_search",
)
POSTGRES_UP = (
    "CREATE INDEX ix_papers_search ON papers USING gin (to_tsvector('simple', search_text))",
)


def _backfill(conn: sa.engine.Connection) -> None:
    """Fill search_text for papers stored before this revision."""
    papers = sa.table(
        "papers",
        *(sa.column(n) for n in ("id", "title", "abstract", "organization", "search_text")),
        sa.column("authors", sa.JSON),
        sa.column("keywords", sa.JSON),
    )
    rows = conn.execute(sa.select(papers).where(papers.c.search_text == "")).mappings().all()
    for row in rows:
        paper = Paper(
            arxiv_id="",
            title=row["title"] or "",
            abstract=row["abstract"] or "",
            authors=tuple(row["authors"] or ()),
            keywords=tuple(row["keywords"] or ()),
            organization=row["organization"],
        )
        conn.execute(
            sa.update(papers)
            .where(papers.c.id == row["id"])
            .values(search_text=paper_search_text(paper))
        )


def upgrade() -> None:
    op.add_column("papers", sa.Column("search_text", sa.Text(), nullable=False, server_default=""))
    conn = op.get_bind()
    _backfill(conn)
    if conn.dialect.name == "sqlite":
        for statement in SQLITE_UP:
            conn.exec_driver_sql(statement)
        conn.exec_driver_sql("INSERT INTO papers_search(papers_search) VALUES ('rebuild')")
    elif conn.dialect.name == "postgresql":
        for statement in POSTGRES_UP:
            conn.exec_driver_sql(statement)


def downgrade() -> None:
    conn = op.get_bind()
    if conn.dialect.name == "sqlite":
        for statement in SQLITE_DOWN:
            conn.exec_driver_sql(statement)
    else:
        op.drop_index("ix_papers_search", table_name="papers")
    with op.batch_alter_table("papers") as batch:
        batch.drop_column("search_text")
