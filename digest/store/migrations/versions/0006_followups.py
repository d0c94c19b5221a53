"""since you last saw it: papers' arXiv version, what each edition's and subscriber's emails showed

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
        "shown_snapshots",
        sa.Column("edition_id", sa.Integer(), nullable=False),
        sa.Column("arxiv_id", sa.String(length=64), nullable=False),
        sa.Column("taken_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("upvotes", sa.Integer(), nullable=False),
        sa.Column("github_stars", sa.Integer(), nullable=True),
        sa.Column("github_url", sa.Text(), nullable=True),
        sa.Column("project_url", sa.Text(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["edition_id"], ["editions.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("edition_id", "arxiv_id"),
    )
    op.create_index("ix_shown_snapshots_taken_at", "shown_snapshots", ["taken_at"])
    op.create_table(
        "shown_emails",
        sa.Column("subscriber_id", sa.Integer(), nullable=False),
        sa.Column("edition_id", sa.Integer(), nullable=False),
        sa.Column("shown_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("papers", sa.JSON(), nullable=False),
        sa.Column("told", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["subscriber_id"], ["subscribers.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["edition_id"], ["editions.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("subscriber_id", "edition_id"),
    )
    op.create_index("ix_shown_emails_shown_at", "shown_emails", ["shown_at"])


def downgrade() -> None:
    op.drop_index("ix_shown_emails_shown_at", table_name="shown_emails")
    op.drop_table("shown_emails")
    op.drop_index("ix_shown_snapshots_taken_at", table_name="shown_snapshots")
    op.drop_table("shown_snapshots")
    op.drop_column("papers", "version")  # SQLite 3.35+ drops a column in place
