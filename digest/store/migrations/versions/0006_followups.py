"""since you last saw it: papers' arXiv version, and what each subscriber's emails showed

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A plain ADD COLUMN, not batch mode: rebuilding `papers` on SQLite would drop the
    # archive search's triggers (see schema.SEARCH_TABLE).
    op.add_column("papers", sa.Column("version", sa.Integer(), nullable=True))
    op.create_table(
        "shown_papers",
        sa.Column("subscriber_id", sa.Integer(), nullable=False),
        sa.Column("arxiv_id", sa.String(length=64), nullable=False),
        sa.Column("edition_id", sa.Integer(), nullable=False),
        sa.Column("shown_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("upvotes", sa.Integer(), nullable=False),
        sa.Column("github_stars", sa.Integer(), nullable=True),
        sa.Column("github_url", sa.Text(), nullable=True),
        sa.Column("project_url", sa.Text(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=True),
        sa.Column("followup_edition_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["subscriber_id"], ["subscribers.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["edition_id"], ["editions.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["followup_edition_id"], ["editions.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("subscriber_id", "arxiv_id"),
    )
    op.create_index("ix_shown_papers_shown_at", "shown_papers", ["shown_at"])


def downgrade() -> None:
    op.drop_index("ix_shown_papers_shown_at", table_name="shown_papers")
    op.drop_table("shown_papers")
    op.drop_column("papers", "version")  # SQLite 3.35+ drops a column in place
