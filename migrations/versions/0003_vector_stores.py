"""vector stores, their files, file batches, chunks and inverted index

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24 05:15:38.964426
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "vector_stores",
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("metadata", sa.JSON(), nullable=False),
        sa.Column("expires_after", sa.JSON(), nullable=True),
        sa.Column("last_active_at", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=True),
        sa.Column("expired_at", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("seq"),
        sa.UniqueConstraint("id"),
    )
    with op.batch_alter_table("vector_stores", schema=None) as batch_op:
        batch_op.create_index("ix_vector_stores_tenant_seq", ["tenant", "seq"], unique=False)

    op.create_table(
        "vector_store_file_batches",
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.Column("vector_store_id", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("cancelled_at", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(["vector_store_id"], ["vector_stores.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("seq"),
        sa.UniqueConstraint("id"),
    )
    with op.batch_alter_table("vector_store_file_batches", schema=None) as batch_op:
        batch_op.create_index("ix_vector_store_file_batches_store_seq", ["vector_store_id", "seq"], unique=False)

    op.create_table(
        "vector_store_files",
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.Column("vector_store_id", sa.String(length=64), nullable=False),
        sa.Column("store_seq", sa.BigInteger(), nullable=False),
        sa.Column("batch_id", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("last_error", sa.JSON(), nullable=True),
        sa.Column("chunking_strategy", sa.JSON(), nullable=False),
        sa.Column("attributes", sa.JSON(), nullable=False),
        sa.Column("filename", sa.Text(), nullable=False),
        sa.Column("usage_bytes", sa.BigInteger(), nullable=False),
        sa.Column("chunk_count", sa.BigInteger(), nullable=False),
        sa.Column("term_count", sa.BigInteger(), nullable=False),
        sa.Column("observations", sa.Integer(), nullable=False),
        sa.Column("content", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["vector_store_id"], ["vector_stores.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("seq"),
        sa.UniqueConstraint("vector_store_id", "id", name="uq_vector_store_files_store_id"),
    )
    with op.batch_alter_table("vector_store_files", schema=None) as batch_op:
        batch_op.create_index("ix_vector_store_files_batch_seq", ["batch_id", "seq"], unique=False)
        batch_op.create_index("ix_vector_store_files_store_seq", ["vector_store_id", "seq"], unique=False)
        batch_op.create_index(
            "ix_vector_store_files_store_status_seq", ["vector_store_id", "status", "seq"], unique=False
        )

    op.create_table(
        "vector_store_chunks",
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("file_seq", sa.BigInteger(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("tokens", sa.Integer(), nullable=False),
        sa.Column("length", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["file_seq"], ["vector_store_files.seq"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("seq"),
        sa.UniqueConstraint("file_seq", "position", name="uq_vector_store_chunks_file_position"),
    )

    op.create_table(
        "vector_store_postings",
        sa.Column("store_seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("term", sa.String(length=255), nullable=False),
        sa.Column("file_seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("df", sa.Integer(), nullable=False),
        sa.Column("postings", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("store_seq", "term", "file_seq"),
        sqlite_with_rowid=False,
    )
    with op.batch_alter_table("vector_store_postings", schema=None) as batch_op:
        batch_op.create_index("ix_vector_store_postings_file", ["file_seq"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("vector_store_postings", schema=None) as batch_op:
        batch_op.drop_index("ix_vector_store_postings_file")

    op.drop_table("vector_store_postings")
    op.drop_table("vector_store_chunks")
    with op.batch_alter_table("vector_store_files", schema=None) as batch_op:
        batch_op.drop_index("ix_vector_store_files_store_status_seq")
        batch_op.drop_index("ix_vector_store_files_store_seq")
        batch_op.drop_index("ix_vector_store_files_batch_seq")

    op.drop_table("vector_store_files")
    with op.batch_alter_table("vector_store_file_batches", schema=None) as batch_op:
        batch_op.drop_index("ix_vector_store_file_batches_store_seq")

    op.drop_table("vector_store_file_batches")
    with op.batch_alter_table("vector_stores", schema=None) as batch_op:
        batch_op.drop_index("ix_vector_stores_tenant_seq")

    op.drop_table("vector_stores")
