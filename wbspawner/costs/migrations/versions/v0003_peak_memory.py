"""The most memory a server used: ``peak_memory_mib`` on the usage records.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-08

Records from before this revision, Dask clusters and servers whose metrics
never answered have no peak (NULL); the spawn form's right-size advice and
the costs page leave them out.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add the nullable ``peak_memory_mib`` column."""
    with op.batch_alter_table("wbspawner_usage") as batch:
        batch.add_column(sa.Column("peak_memory_mib", sa.Integer(), nullable=True))


def downgrade() -> None:
    """Drop ``peak_memory_mib`` (the peaks recorded are lost, the records kept)."""
    with op.batch_alter_table("wbspawner_usage") as batch:
        batch.drop_column("peak_memory_mib")
