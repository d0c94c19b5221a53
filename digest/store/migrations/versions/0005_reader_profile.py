"""the reader's own profile: likes and dislikes, blend, follows, their hour, empty days

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMN, never a batch "move and copy": on SQLite that recreates the table, and
    # dropping the old subscribers table would cascade-delete every delivery row.
    columns = [
        sa.Column("blend", sa.Float(), nullable=True),
        sa.Column("follow_authors", sa.JSON(), nullable=False, server_default="[]"),
        sa.Column("follow_orgs", sa.JSON(), nullable=False, server_default="[]"),
        sa.Column("timezone", sa.String(length=64), nullable=True),
        sa.Column("send_hour", sa.Integer(), nullable=True),
        sa.Column("empty_days", sa.String(length=8), nullable=False, server_default="skip"),
        sa.Column("followups", sa.Boolean(), nullable=False, server_default=sa.true()),
    ]
    for column in columns:
        op.add_column("subscribers", column)
    op.create_table(
        "ratings",
        sa.Column("subscriber_id", sa.Integer(), nullable=False),
        sa.Column("arxiv_id", sa.String(length=64), nullable=False),
        sa.Column("value", sa.SmallInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["subscriber_id"], ["subscribers.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("subscriber_id", "arxiv_id"),
    )


def downgrade() -> None:
    op.drop_table("ratings")
    with op.batch_alter_table("subscribers") as batch:
        for name in (
            "followups",
            "empty_days",
            "send_hour",
            "timezone",
            "follow_orgs",
            "follow_authors",
            "blend",
        ):
            batch.drop_column(name)
