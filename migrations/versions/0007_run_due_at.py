"""runs: when a runner should next move the run (`due_at`), indexed for the runners' sweep

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_DUE = sa.text("due_at IS NOT NULL")


def upgrade() -> None:
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("due_at", sa.Double(), nullable=True))
    op.create_index("ix_runs_due_at", "runs", ["due_at"], postgresql_where=_DUE, sqlite_where=_DUE)


def downgrade() -> None:
    op.drop_index("ix_runs_due_at", table_name="runs")
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_column("due_at")
