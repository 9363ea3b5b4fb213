"""Alembic's environment for the warehouse: the connection and options come from migrations.py.

There is no alembic.ini. `misuse_warehouse.migrations` builds the Config, opens the transaction,
takes the advisory lock and passes its connection in `config.attributes`; this file only hands them
to Alembic, so every upgrade (prepare(), `misuse-warehouse migrate`, tests) runs the same way.
"""

from __future__ import annotations

from alembic import context

config = context.config
connection = config.attributes["connection"]
context.configure(
    connection=connection,
    version_table_schema=config.attributes["version_table_schema"],
    transaction_per_migration=False,
)
with context.begin_transaction():  # the caller's transaction is open: this commits nothing
    context.run_migrations()
