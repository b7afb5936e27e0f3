"""Usage records: the schema the hub made with ``create_all`` before migrations.

Revision ID: 0001
Revises: (none)
Create Date: 2026-12-07

A database that already has ``wbspawner_usage`` but no version table is stamped
with this revision instead of running it (``wbspawner.costs.migrations.upgrade``).
Written out in full, never from the model: the model moves on, this stays.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

INDEXED = ("kind", "user", "started_at")
"""Columns with an index of their own, named as SQLAlchemy names them."""


def upgrade() -> None:
    """Create the usage records table and its indexes."""
    op.create_table(
        "wbspawner_usage",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("user", sa.String(length=255), nullable=False),
        sa.Column("group", sa.String(length=255), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("size", sa.String(length=64), nullable=False),
        sa.Column("pool", sa.String(length=64), nullable=False),
        sa.Column("capacity_type", sa.String(length=16), nullable=False),
        sa.Column("zone", sa.String(length=32), nullable=False),
        sa.Column("node", sa.String(length=255), nullable=False),
        sa.Column("units", sa.Integer(), nullable=False),
        sa.Column("price_micro_per_hour", sa.BigInteger(), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("stopped_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    for column in INDEXED:
        op.create_index(f"ix_wbspawner_usage_{column}", "wbspawner_usage", [column])


def downgrade() -> None:
    """Drop the usage records table (and so every record)."""
    for column in INDEXED:
        op.drop_index(f"ix_wbspawner_usage_{column}", table_name="wbspawner_usage")
    op.drop_table("wbspawner_usage")
