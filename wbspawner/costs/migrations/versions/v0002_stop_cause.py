"""Why a run ended: ``stop_cause`` on the usage records.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-07

Records closed before this revision, and open ones, have no cause (NULL).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add the nullable ``stop_cause`` column."""
    with op.batch_alter_table("wbspawner_usage") as batch:
        batch.add_column(sa.Column("stop_cause", sa.String(length=16), nullable=True))


def downgrade() -> None:
    """Drop ``stop_cause`` (the causes recorded are lost, the records kept)."""
    with op.batch_alter_table("wbspawner_usage") as batch:
        batch.drop_column("stop_cause")
