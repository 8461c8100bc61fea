"""control state

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24 04:59:21.852836
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "fault_rules",
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("rule", sa.JSON(), nullable=False),
        sa.Column("hits", sa.BigInteger(), nullable=False),
        sa.Column("fired", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
        sa.UniqueConstraint("id"),
    )
    with op.batch_alter_table("fault_rules", schema=None) as batch_op:
        batch_op.create_index("ix_fault_rules_tenant_seq", ["tenant", "seq"], unique=False)

    op.create_table(
        "rate_counters",
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.Column("bucket", sa.String(length=160), nullable=False),
        sa.Column("window_start", sa.BigInteger(), nullable=False),
        sa.Column("requests", sa.BigInteger(), nullable=False),
        sa.Column("tokens", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("tenant", "bucket", "window_start"),
    )
    op.create_table(
        "scripted_turns",
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("match", sa.JSON(), nullable=False),
        sa.Column("turn", sa.JSON(), nullable=False),
        sa.Column("consumed_at", sa.BigInteger(), nullable=True),
        sa.Column("consumed_by_run", sa.String(length=64), nullable=True),
        sa.Column("request", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("seq"),
        sa.UniqueConstraint("id"),
    )
    with op.batch_alter_table("scripted_turns", schema=None) as batch_op:
        batch_op.create_index("ix_scripted_turns_tenant_pending_seq", ["tenant", "consumed_at", "seq"], unique=False)

    op.create_table(
        "tenant_settings",
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.Column("rate_limits", sa.JSON(), nullable=True),
        sa.Column("latency", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("tenant"),
    )


def downgrade() -> None:
    op.drop_table("tenant_settings")
    with op.batch_alter_table("scripted_turns", schema=None) as batch_op:
        batch_op.drop_index("ix_scripted_turns_tenant_pending_seq")

    op.drop_table("scripted_turns")
    op.drop_table("rate_counters")
    with op.batch_alter_table("fault_rules", schema=None) as batch_op:
        batch_op.drop_index("ix_fault_rules_tenant_seq")

    op.drop_table("fault_rules")
