"""Alembic's environment for the accounting schema: run by Alembic, never imported.

The connection to migrate over, already in its transaction, and (for
autogenerate) the model's metadata come from
:func:`wbspawner.costs.migrations.alembic_config`, in ``config.attributes``.
There is no offline (``--sql``) mode.
"""

from __future__ import annotations

from alembic import context

from wbspawner.costs.migrations import VERSION_TABLE


def run() -> None:
    """Run the pending migrations over the caller's connection."""
    attributes = context.config.attributes
    connection = attributes.get("connection")
    if connection is None or context.is_offline_mode():
        raise RuntimeError(
            "the accounting migrations run over a connection passed in "
            "config.attributes (wbspawner.costs.migrations.alembic_config)"
        )
    context.configure(
        connection=connection,
        target_metadata=attributes.get("target_metadata"),
        version_table=VERSION_TABLE,
        # SQLite alters a table by copying it: revisions it generates say so.
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


run()
