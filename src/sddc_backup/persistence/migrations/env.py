"""Alembic environment: runs on the connection the service hands over, or on sqlalchemy.url."""

from alembic import context
from sqlalchemy import Connection, create_engine

from sddc_backup.persistence.tables import Base

config = context.config
target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:  # a developer running `alembic revision --autogenerate` against a scratch database
    with create_engine(config.get_main_option("sqlalchemy.url") or "sqlite://").connect() as conn:
        _run(conn)
        conn.commit()
