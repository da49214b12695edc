"""Compile rule trees to SQLAlchemy Core expressions for PostgreSQL and SQLite."""
