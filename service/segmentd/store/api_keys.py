"""API keys in the store: created, looked up by id, listed and revoked.

    ApiKeyRepository(sessions).create(record)     a new key (its hash, never the key)
                              .find(key_id)       the record, revoked or not, or None
                              .list()             every key, oldest first
                              .revoke(key_id)     sets revoke_time once; later calls keep it

The repository knows nothing of the key's format or of hashing: ``segmentd.security`` makes
keys and checks them, and hands this module only the id, the hash and the scopes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from segmentd.errors import NotFound
from segmentd.store.database import as_utc, read_session, store_operation, write_session
from segmentd.store.models import ApiKeyRow


class ApiKeyNotFound(NotFound):
    """No API key has this id."""


@dataclass(frozen=True, slots=True)
class ApiKeyRecord:
    """One stored API key.

    Attributes:
        key_id: the key's public id (also the start of the key itself).
        key_hash: hex SHA-256 of the whole key.
        scopes: the scope names the key grants.
        description: free text given at creation.
        create_time: when the key was created.
        revoke_time: when it was revoked, or ``None`` while it is valid.
    """

    key_id: str
    key_hash: str
    scopes: frozenset[str]
    description: str
    create_time: datetime
    revoke_time: datetime | None = None


def _record(row: ApiKeyRow) -> ApiKeyRecord:
    return ApiKeyRecord(
        key_id=row.key_id,
        key_hash=row.key_hash,
        scopes=frozenset(row.scopes.split()),
        description=row.description,
        create_time=as_utc(row.create_time),
        revoke_time=None if row.revoke_time is None else as_utc(row.revoke_time),
    )


class ApiKeyRepository:
    """API keys, on the service's database.

    Args:
        sessions: the session factory of the store.
    """

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    @store_operation
    async def create(self, record: ApiKeyRecord) -> None:
        """Store a new key.

        Raises:
            StoreUnavailable: the database does not answer.
        """
        async with write_session(self._sessions) as session:
            await session.execute(
                insert(ApiKeyRow).values(
                    key_id=record.key_id,
                    key_hash=record.key_hash,
                    scopes=" ".join(sorted(record.scopes)),
                    description=record.description,
                    create_time=record.create_time,
                    revoke_time=record.revoke_time,
                )
            )

    @store_operation
    async def find(self, key_id: str) -> ApiKeyRecord | None:
        """Return the key with id ``key_id`` (revoked or not), or ``None``.

        Raises:
            StoreUnavailable: the database does not answer.
        """
        async with read_session(self._sessions) as session:
            row = await session.scalar(select(ApiKeyRow).where(ApiKeyRow.key_id == key_id))
        return None if row is None else _record(row)

    @store_operation
    async def list(self) -> list[ApiKeyRecord]:
        """Return every key, revoked ones included, oldest first.

        Raises:
            StoreUnavailable: the database does not answer.
        """
        async with read_session(self._sessions) as session:
            rows = await session.scalars(select(ApiKeyRow).order_by(ApiKeyRow.create_time, ApiKeyRow.key_id))
            return [_record(row) for row in rows]

    @store_operation
    async def revoke(self, key_id: str, now: datetime | None = None) -> ApiKeyRecord:
        """Revoke the key ``key_id``; revoking a revoked key keeps its first revocation time.

        Returns:
            The key as it now stands.

        Raises:
            ApiKeyNotFound: no key has this id.
            StoreUnavailable: the database does not answer.
        """
        async with write_session(self._sessions) as session:
            await session.execute(
                update(ApiKeyRow)
                .where(ApiKeyRow.key_id == key_id, ApiKeyRow.revoke_time.is_(None))
                .values(revoke_time=now or datetime.now(UTC))
            )
            row = await session.scalar(select(ApiKeyRow).where(ApiKeyRow.key_id == key_id))
            if row is None:
                raise ApiKeyNotFound(f"no API key has the id {key_id!r}")
            return _record(row)
