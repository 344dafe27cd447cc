"""Alembic environment for pmfin's own ``pmfin_*`` tables (no alembic.ini: see pmfin.db.migrate)."""

from alembic import context

from pmfin.db.migrate import VERSION_TABLE

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=None,
    version_table=VERSION_TABLE,
    transactional_ddl=True,
)
with context.begin_transaction():
    context.run_migrations()
