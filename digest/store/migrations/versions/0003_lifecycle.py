"""edition approval time; why a delivery failed

Revision ID: 0003
Revises: 0002
"""

import re

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

# Rows that failed before this revision kept their reason only as text in last_error. The
# rules are copied here (not imported) so this revision means the same thing forever.
_REPLY = re.compile(r"^(\d{3})(?:\s+([245]\.\d{1,3}\.\d{1,3}))?")


def _classify(last_error: str | None) -> tuple[str, str | None]:
    text = last_error or ""
    if text.startswith("render: "):
        return "render", None
    match = _REPLY.match(text)
    if not match:
        return "rejected", None
    code, enhanced = match.group(1), match.group(2) or ""
    shown = f"{code} {enhanced}".strip()
    if code.startswith("4"):
        return "temporary", shown
    if enhanced.startswith("5.1."):
        return "mailbox", shown
    if enhanced.startswith("5.7."):
        return "policy", shown
    if code == "552" or enhanced in ("5.2.2", "5.2.3", "5.3.4"):
        return "size", shown
    return "rejected", shown


def upgrade() -> None:
    with op.batch_alter_table("editions") as batch:
        batch.add_column(sa.Column("approved_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("deliveries") as batch:
        batch.add_column(sa.Column("failure", sa.String(length=16), nullable=True))
        batch.add_column(sa.Column("failure_code", sa.String(length=16), nullable=True))
    deliveries = sa.table(
        "deliveries",
        sa.column("id", sa.Integer),
        sa.column("status", sa.String),
        sa.column("last_error", sa.Text),
        sa.column("failure", sa.String),
        sa.column("failure_code", sa.String),
    )
    conn = op.get_bind()
    failed = conn.execute(
        sa.select(deliveries.c.id, deliveries.c.last_error).where(deliveries.c.status == "failed")
    ).all()
    for row_id, last_error in failed:
        failure, code = _classify(last_error)
        conn.execute(
            sa.update(deliveries)
            .where(deliveries.c.id == row_id)
            .values(failure=failure, failure_code=code)
        )


def downgrade() -> None:
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_column("failure_code")
        batch.drop_column("failure")
    with op.batch_alter_table("editions") as batch:
        batch.drop_column("approved_at")
