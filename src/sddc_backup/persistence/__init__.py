"""The service's own state store: SQLAlchemy 2 (async) with alembic migrations; SQLite or PostgreSQL."""
