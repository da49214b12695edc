"""Persistence on SQLAlchemy 2 async: PostgreSQL (asyncpg) or SQLite (aiosqlite)."""
