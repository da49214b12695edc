"""The ``segmentd.v1.UserListService`` servicer: decode, one domain call, encode.

The three member streams share one decoder: the list's name comes in the first message, and
later messages may leave it empty or repeat it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Protocol

from google.protobuf import empty_pb2
from grpc import aio

from segmentd.api.errors import abort_on_domain_error
from segmentd.api.mappers import timestamp
from segmentd.errors import InvalidArgument
from segmentd.store.user_list_members import ChangeKind
from segmentd.store.user_lists import UserList
from segmentd.user_lists import UserListDirectory
from segmentd_client.v1 import user_lists_pb2, user_lists_pb2_grpc

Context = aio.ServicerContext[object, object]


class _MembersMessage(Protocol):
    name: str

    @property
    def user_ids(self) -> Sequence[str]: ...


def user_list_to_proto(user_list: UserList) -> user_lists_pb2.UserList:
    """Encode a stored list as a message."""
    return user_lists_pb2.UserList(
        name=user_list.name,
        description=user_list.description,
        member_count=user_list.member_count,
        create_time=timestamp(user_list.create_time),
        update_time=timestamp(user_list.update_time),
    )


async def _name_and_batches(
    messages: AsyncIterator[_MembersMessage],
) -> tuple[str, AsyncIterator[Sequence[str]]]:
    """Return the list's name (from the first message) and the stream of id batches."""
    first = await anext(messages, None)
    if first is None or not first.name:
        raise InvalidArgument("name", "the first message must name the user list")
    name = first.name

    async def batches() -> AsyncIterator[Sequence[str]]:
        yield list(first.user_ids)
        async for message in messages:
            if message.name and message.name != name:
                raise InvalidArgument("name", f"the stream is about user list {name!r}, not {message.name!r}")
            yield list(message.user_ids)

    return name, batches()


class UserListServicer(user_lists_pb2_grpc.UserListServiceServicer):
    """``segmentd.v1.UserListService``."""

    def __init__(self, directory: UserListDirectory) -> None:
        self._directory = directory

    async def CreateUserList(
        self, request: user_lists_pb2.CreateUserListRequest, context: Context
    ) -> user_lists_pb2.UserList:
        """Create an empty list."""
        async with abort_on_domain_error(context):
            created = await self._directory.create(request.user_list.name, request.user_list.description)
            return user_list_to_proto(created)

    async def GetUserList(
        self, request: user_lists_pb2.GetUserListRequest, context: Context
    ) -> user_lists_pb2.UserList:
        """Return a list with its member count."""
        async with abort_on_domain_error(context):
            return user_list_to_proto(await self._directory.get(request.name))

    async def ListUserLists(
        self, request: user_lists_pb2.ListUserListsRequest, context: Context
    ) -> user_lists_pb2.ListUserListsResponse:
        """Return one page of lists."""
        async with abort_on_domain_error(context):
            page = await self._directory.list(request.page_size, request.page_token)
            return user_lists_pb2.ListUserListsResponse(
                user_lists=[user_list_to_proto(user_list) for user_list in page.user_lists],
                next_page_token=page.next_page_token,
            )

    async def DeleteUserList(
        self, request: user_lists_pb2.DeleteUserListRequest, context: Context
    ) -> empty_pb2.Empty:
        """Delete a list no segment references."""
        async with abort_on_domain_error(context):
            await self._directory.delete(request.name)
            return empty_pb2.Empty()

    async def AddUserListMembers(
        self, request_iterator: AsyncIterator[user_lists_pb2.AddUserListMembersRequest], context: Context
    ) -> user_lists_pb2.AddUserListMembersResponse:
        """Add the streamed ids to a list, all or nothing."""
        async with abort_on_domain_error(context):
            count = await self._change(request_iterator, "add")
            return user_lists_pb2.AddUserListMembersResponse(member_count=count)

    async def RemoveUserListMembers(
        self, request_iterator: AsyncIterator[user_lists_pb2.RemoveUserListMembersRequest], context: Context
    ) -> user_lists_pb2.RemoveUserListMembersResponse:
        """Remove the streamed ids from a list, all or nothing."""
        async with abort_on_domain_error(context):
            count = await self._change(request_iterator, "remove")
            return user_lists_pb2.RemoveUserListMembersResponse(member_count=count)

    async def ReplaceUserListMembers(
        self, request_iterator: AsyncIterator[user_lists_pb2.ReplaceUserListMembersRequest], context: Context
    ) -> user_lists_pb2.ReplaceUserListMembersResponse:
        """Make the streamed ids the whole list, atomically."""
        async with abort_on_domain_error(context):
            count = await self._change(request_iterator, "replace")
            return user_lists_pb2.ReplaceUserListMembersResponse(member_count=count)

    async def _change(self, messages: AsyncIterator[_MembersMessage], kind: ChangeKind) -> int:
        name, batches = await _name_and_batches(messages)
        return await self._directory.change_members(name, kind, batches)
