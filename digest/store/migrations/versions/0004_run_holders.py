"""runs record their holder; holder columns fit new_holder() names

A run's holder (``host:pid:random``) lets another process tell at once that a run's process
is gone, so `digest status` shows it as crashed and the next send reports its rows unknown.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("holder", sa.String(length=128), nullable=True))
    with op.batch_alter_table("deliveries") as batch:
        batch.alter_column(
            "claimed_by", existing_type=sa.String(length=64), type_=sa.String(length=128)
        )


def downgrade() -> None:
    with op.batch_alter_table("deliveries") as batch:
        batch.alter_column(
            "claimed_by", existing_type=sa.String(length=128), type_=sa.String(length=64)
        )
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("holder")
