"""User lists: their writes through the store, keeping the profile cache coherent.

A cached profile carries the memberships of the lists the catalogue tests, so every change
to a list's members invalidates, before it is acknowledged, exactly the users whose
membership may have moved (all of them when more than ``MAX_NAMED_CHANGES`` may have: one
``clear`` costs less than millions of invalidations). Other replicas learn of the change
through the members table's notifying triggers (PostgreSQL), as for profile writes.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Sequence

from segmentd.errors import InvalidArgument, UserListNotFound
from segmentd.profiles import ProfileCache
from segmentd.store.checks import check_user_ids
from segmentd.store.user_list_members import ChangeKind, MemberChange
from segmentd.store.user_lists import UserList, UserListPage, UserListRepository, check_list_name


class UserListDirectory:
    """Creates, reads and deletes user lists and changes their members.

    Args:
        repository: where lists are stored.
        cache: the profile cache shared with evaluation.
    """

    def __init__(self, repository: UserListRepository, cache: ProfileCache) -> None:
        self._repository = repository
        self._cache = cache

    async def create(self, name: str, description: str) -> UserList:
        """Store a new, empty list."""
        return await self._repository.create(name, description)

    async def get(self, name: str) -> UserList:
        """Return a list with its member count."""
        return await self._repository.get(check_list_name(name, "name"))

    async def list(self, page_size: int, page_token: str) -> UserListPage:
        """Return one page of lists, by name."""
        return await self._repository.list(page_size, page_token)

    async def delete(self, name: str) -> None:
        """Delete a list no segment tests, and its members."""
        check_list_name(name, "name")
        self._forget(await self._repository.delete(name))

    async def change_members(self, name: str, kind: ChangeKind, batches: AsyncIterable[Sequence[str]]) -> int:
        """Add, remove or replace the list's members with the streamed ids; return the member count.

        Raises:
            InvalidArgument: ``name``, or ``user_ids[i]`` (``i`` counts ids across the stream).
            UserListNotFound: no list has this name.
        """
        check_list_name(name, "name")
        try:
            change = await self._repository.change_members(name, kind, _checked(batches))
        except (InvalidArgument, UserListNotFound):
            raise  # refused before anything was written
        except BaseException:
            # The outcome is unknown (a timeout after commit, say): forget every cached user.
            self._cache.clear()
            raise
        self._forget(change)
        return change.member_count

    def _forget(self, change: MemberChange) -> None:
        if change.changed is None:
            self._cache.clear()
            return
        for user_id in change.changed:
            self._cache.invalidate(user_id)


async def _checked(batches: AsyncIterable[Sequence[str]]) -> AsyncIterator[Sequence[str]]:
    """Yield the batches, refusing a malformed id by its position in the whole stream."""
    position = 0
    async for batch in batches:
        check_user_ids(batch, "user_ids", position)
        position += len(batch)
        yield batch
