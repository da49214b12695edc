"""User lists in both clients: ``UserList`` records and the methods ``Client`` and ``AsyncClient`` share.

    client.create_user_list(name) / get_user_list / list_user_lists / delete_user_list
    client.add_list_members(name, ids) / remove_list_members / replace_list_members -> member count

The member methods send the ids in one client-streaming call (``batch_size`` ids a message,
the name in the first): the server applies the whole stream in one transaction. An exception
raised while iterating the ids cancels the call (nothing is changed) and is raised again.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final, Literal

import grpc
from grpc import aio

from segmentd_client._convert import time_of
from segmentd_client.errors import from_grpc_error
from segmentd_client.v1 import user_lists_pb2, user_lists_pb2_grpc

if TYPE_CHECKING:
    from segmentd_client._channel import ChannelSettings

#: User ids per message: ~10 KiB to 2.5 MiB, within the server's 4 MiB default limit.
DEFAULT_BATCH_SIZE: Final = 10_000

MemberChange = Literal["add", "remove", "replace"]
_REQUESTS: Final[dict[str, Any]] = {
    "add": user_lists_pb2.AddUserListMembersRequest,
    "remove": user_lists_pb2.RemoveUserListMembersRequest,
    "replace": user_lists_pb2.ReplaceUserListMembersRequest,
}
_METHODS: Final = {
    "add": "AddUserListMembers",
    "remove": "RemoveUserListMembers",
    "replace": "ReplaceUserListMembers",
}


@dataclass(frozen=True, slots=True)
class UserList:
    """An explicit set of user ids, tested in rules with ``in_list``."""

    name: str
    description: str
    member_count: int
    create_time: datetime | None
    update_time: datetime | None


def user_list_from_proto(message: user_lists_pb2.UserList) -> UserList:
    """Return a ``UserList`` message as a record."""
    return UserList(
        name=message.name,
        description=message.description,
        member_count=message.member_count,
        create_time=time_of(message.create_time, message.HasField("create_time")),
        update_time=time_of(message.update_time, message.HasField("update_time")),
    )


def member_requests(
    kind: MemberChange, name: str, user_ids: Iterable[str], batch_size: int, on_sent: Callable[[int], object]
) -> Iterator[Any]:
    """Yield the messages of a member change: at least one (the name), ``batch_size`` ids each."""
    request = _REQUESTS[kind]
    ids = iter(user_ids)
    first = True
    # islice fills each batch in C: a Python loop over millions of ids costs more than the rest.
    while (batch := list(itertools.islice(ids, batch_size))) or first:
        yield request(name=name if first else "", user_ids=batch)
        on_sent(len(batch))
        first = False


class UserListMethods:
    """The user-list methods of ``Client`` (which supplies ``_settings``, ``_channel`` and ``_call``)."""

    _settings: ChannelSettings
    _channel: grpc.Channel
    _call: Callable[..., Any]

    @property
    def _user_lists(self) -> user_lists_pb2_grpc.UserListServiceStub:
        return user_lists_pb2_grpc.UserListServiceStub(self._channel)

    def create_user_list(self, name: str, *, description: str = "", timeout: float | None = None) -> UserList:
        """Create an empty list; ``AlreadyExists`` if the name is taken."""
        message = user_lists_pb2.UserList(name=name, description=description)
        request = user_lists_pb2.CreateUserListRequest(user_list=message)
        return user_list_from_proto(self._call(self._user_lists.CreateUserList, request, timeout))

    def get_user_list(self, name: str, *, timeout: float | None = None) -> UserList:
        """Return a list with its member count; ``NotFound`` when there is none."""
        request = user_lists_pb2.GetUserListRequest(name=name)
        return user_list_from_proto(self._call(self._user_lists.GetUserList, request, timeout))

    def list_user_lists(self, *, timeout: float | None = None) -> list[UserList]:
        """Return every list, in name order (all pages)."""
        found: list[UserList] = []
        token = ""
        while True:
            request = user_lists_pb2.ListUserListsRequest(page_token=token)
            page = self._call(self._user_lists.ListUserLists, request, timeout)
            found.extend(user_list_from_proto(user_list) for user_list in page.user_lists)
            token = page.next_page_token
            if not token:
                return found

    def delete_user_list(self, name: str, *, timeout: float | None = None) -> None:
        """Delete a list and its members; ``FailedPrecondition`` while a segment tests it."""
        self._call(self._user_lists.DeleteUserList, user_lists_pb2.DeleteUserListRequest(name=name), timeout)

    def add_list_members(self, name: str, user_ids: Iterable[str], **options: Any) -> int:
        """Add ``user_ids`` to the list, all or nothing; return its member count.

        Options: ``batch_size`` (ids per message), ``timeout``, ``on_sent`` (called with the
        number of ids of each message sent, for a progress bar).
        """
        return self._change_members("add", name, user_ids, **options)

    def remove_list_members(self, name: str, user_ids: Iterable[str], **options: Any) -> int:
        """Remove ``user_ids`` from the list, all or nothing; return its member count."""
        return self._change_members("remove", name, user_ids, **options)

    def replace_list_members(self, name: str, user_ids: Iterable[str], **options: Any) -> int:
        """Make ``user_ids`` the whole list, atomically; return its member count."""
        return self._change_members("replace", name, user_ids, **options)

    def _change_members(
        self,
        kind: MemberChange,
        name: str,
        user_ids: Iterable[str],
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
        timeout: float | None = None,
        on_sent: Callable[[int], object] = lambda _count: None,
    ) -> int:
        aborted: list[BaseException] = []
        call_made = threading.Event()
        calls: list[Any] = []

        def requests() -> Iterator[Any]:
            try:
                yield from member_requests(kind, name, user_ids, batch_size, on_sent)
            except Exception as exc:  # the caller's: stop the call, so nothing is changed
                aborted.append(exc)
                call_made.wait()
                calls[0].cancel()

        method = getattr(self._user_lists, _METHODS[kind])
        # grpc consumes requests() on a thread of its own, which may start before .future() returns.
        timeout = timeout or self._settings.stream_timeout
        calls.append(method.future(requests(), timeout=timeout, metadata=self._settings.metadata))
        call_made.set()
        try:
            return int(calls[0].result().member_count)
        except grpc.FutureCancelledError:
            raise aborted[0] from None
        except grpc.RpcError as exc:
            if aborted:
                raise aborted[0] from None
            raise from_grpc_error(exc) from exc


class AsyncUserListMethods:
    """The user-list methods of ``AsyncClient``."""

    _settings: ChannelSettings
    _channel: aio.Channel
    _call: Callable[..., Any]

    @property
    def _user_lists(self) -> user_lists_pb2_grpc.UserListServiceAsyncStub:
        return user_lists_pb2_grpc.UserListServiceStub(self._channel)

    async def create_user_list(
        self, name: str, *, description: str = "", timeout: float | None = None
    ) -> UserList:
        """Create an empty list; ``AlreadyExists`` if the name is taken."""
        message = user_lists_pb2.UserList(name=name, description=description)
        request = user_lists_pb2.CreateUserListRequest(user_list=message)
        return user_list_from_proto(await self._call(self._user_lists.CreateUserList, request, timeout))

    async def get_user_list(self, name: str, *, timeout: float | None = None) -> UserList:
        """Return a list with its member count; ``NotFound`` when there is none."""
        request = user_lists_pb2.GetUserListRequest(name=name)
        return user_list_from_proto(await self._call(self._user_lists.GetUserList, request, timeout))

    async def list_user_lists(self, *, timeout: float | None = None) -> list[UserList]:
        """Return every list, in name order (all pages)."""
        found: list[UserList] = []
        token = ""
        while True:
            request = user_lists_pb2.ListUserListsRequest(page_token=token)
            page = await self._call(self._user_lists.ListUserLists, request, timeout)
            found.extend(user_list_from_proto(user_list) for user_list in page.user_lists)
            token = page.next_page_token
            if not token:
                return found

    async def delete_user_list(self, name: str, *, timeout: float | None = None) -> None:
        """Delete a list and its members; ``FailedPrecondition`` while a segment tests it."""
        request = user_lists_pb2.DeleteUserListRequest(name=name)
        await self._call(self._user_lists.DeleteUserList, request, timeout)

    async def add_list_members(
        self, name: str, user_ids: Iterable[str] | AsyncIterable[str], **options: Any
    ) -> int:
        """Add ``user_ids`` to the list, all or nothing; return its member count."""
        return await self._change_members("add", name, user_ids, **options)

    async def remove_list_members(
        self, name: str, user_ids: Iterable[str] | AsyncIterable[str], **options: Any
    ) -> int:
        """Remove ``user_ids`` from the list, all or nothing; return its member count."""
        return await self._change_members("remove", name, user_ids, **options)

    async def replace_list_members(
        self, name: str, user_ids: Iterable[str] | AsyncIterable[str], **options: Any
    ) -> int:
        """Make ``user_ids`` the whole list, atomically; return its member count."""
        return await self._change_members("replace", name, user_ids, **options)

    async def _change_members(
        self,
        kind: MemberChange,
        name: str,
        user_ids: Iterable[str] | AsyncIterable[str],
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
        timeout: float | None = None,
        on_sent: Callable[[int], object] = lambda _count: None,
    ) -> int:
        method = getattr(self._user_lists, _METHODS[kind])
        call = method(timeout=timeout or self._settings.stream_timeout, metadata=self._settings.metadata)
        try:
            async for message in _async_requests(kind, name, user_ids, batch_size, on_sent):
                await call.write(message)
            await call.done_writing()
            return int((await call).member_count)
        except grpc.RpcError as exc:
            raise from_grpc_error(exc) from exc
        except BaseException:
            call.cancel()  # the caller's error: nothing is changed
            raise


async def _async_requests(
    kind: MemberChange,
    name: str,
    user_ids: Iterable[str] | AsyncIterable[str],
    batch_size: int,
    on_sent: Callable[[int], object],
) -> AsyncIterator[Any]:
    if isinstance(user_ids, AsyncIterable):
        batch: list[str] = []
        first = True
        async for user_id in user_ids:
            batch.append(user_id)
            if len(batch) >= batch_size:
                yield _REQUESTS[kind](name=name if first else "", user_ids=batch)
                on_sent(len(batch))
                batch, first = [], False
        if batch or first:
            yield _REQUESTS[kind](name=name if first else "", user_ids=batch)
            on_sent(len(batch))
        return
    for message in member_requests(kind, name, user_ids, batch_size, on_sent):
        yield message
