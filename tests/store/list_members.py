"""Helpers of the user-list store tests: ids streamed in batches, and a list's members as stored."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from segmentd.store.models import UserListMemberRow


async def batches(*sent: Sequence[str]) -> AsyncIterator[Sequence[str]]:
    """The ids of a member stream, one batch (message) at a time."""
    for batch in sent:
        yield batch


async def members(engine: AsyncEngine, name: str) -> list[str]:
    """The stored members of list ``name``, in ascending order."""
    query = select(UserListMemberRow.user_id).where(UserListMemberRow.list_name == name)
    async with engine.connect() as connection:
        return list(await connection.scalars(query.order_by(UserListMemberRow.user_id)))
