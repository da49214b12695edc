"""The ImportProfiles stream both clients send: batching, and positions in the caller's terms.

    caller's iterable ─> ImportStream.add(item) ─> ImportProfilesRequest batches ─> server
    server's answer (positions in the stream) ─> ImportStream.result / .error ─> caller's positions

The server numbers profiles by their 1-based position in the stream; a profile too large to
send is refused here and never sent, so the two numberings differ after it. The stream maps
them back, so every position the caller sees is one in its own iterable.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Mapping
from typing import Any, Final

from segmentd_client._convert import TraitsTooDeep, profile_to_proto
from segmentd_client.errors import InvalidArgument
from segmentd_client.types import ImportProblem, ImportResult, Profile
from segmentd_client.v1 import profiles_pb2

DEFAULT_BATCH_SIZE: Final = 500
#: Messages stay well under the server's 4 MiB default receive limit.
MAX_MESSAGE_BYTES: Final = 1024 * 1024

_PROFILE_AT_POSITION: Final = re.compile(r"profiles\[(\d+)\]")

#: What ``import_profiles`` accepts for one profile.
ProfileInput = Mapping[str, Any] | Profile


class PositionMap:
    """Maps 1-based positions in one sequence to positions in another that it skips parts of.

    Positions usually follow each other at a constant offset, so only the places where the
    offset changes are kept: memory grows with what is skipped, not with the sequence.
    """

    def __init__(self) -> None:
        self._starts: list[int] = []
        self._offsets: list[int] = []
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def add(self, target: int) -> int:
        """Record that the next position maps to ``target``; return that position (from 1)."""
        self._count += 1
        offset = target - self._count
        if not self._offsets or self._offsets[-1] != offset:
            self._starts.append(self._count)
            self._offsets.append(offset)
        return self._count

    def get(self, position: int) -> int | None:
        """Return what ``position`` maps to, or None when no such position was added."""
        if not 1 <= position <= self._count:
            return None
        return position + self._offsets[bisect_right(self._starts, position) - 1]


def _as_profile(item: ProfileInput) -> profiles_pb2.Profile:
    if isinstance(item, Profile):
        return profile_to_proto(item.user_id, item.traits)
    return profile_to_proto(str(item.get("user_id", "")), item.get("traits") or {})


class ImportStream:
    """Turns the caller's profiles into request messages, and the server's answers back."""

    def __init__(self, replace: bool, skip_invalid: bool, batch_size: int = DEFAULT_BATCH_SIZE) -> None:
        self._replace, self._skip_invalid, self._batch_size = replace, skip_invalid, batch_size
        self._sent = PositionMap()
        self._problems: list[ImportProblem] = []
        self._index = 0
        self._batch: list[profiles_pb2.Profile] = []
        self._batch_bytes = 0
        self._sent_first = False

    def add(self, item: ProfileInput) -> list[profiles_pb2.ImportProfilesRequest]:
        """Take the caller's next profile; return the messages now ready to send (0 or 1).

        Raises:
            InvalidArgument: the profile cannot be sent (its traits nest too deeply, or it is
                too large), and ``skip_invalid`` is off.
        """
        self._index += 1
        try:
            profile = _as_profile(item)
        except TraitsTooDeep as error:
            return self._refuse(error.reason)
        size = profile.ByteSize()
        if size > MAX_MESSAGE_BYTES:
            return self._refuse(f"the profile is {size} bytes, too large to send")
        ready = self._flush() if self._batch and self._batch_bytes + size > MAX_MESSAGE_BYTES else []
        self._sent.add(self._index)
        self._batch.append(profile)
        self._batch_bytes += size
        if len(self._batch) >= self._batch_size:
            ready += self._flush()
        return ready

    def _refuse(self, reason: str) -> list[profiles_pb2.ImportProfilesRequest]:
        """Leave out the current profile, never sent: a problem with ``skip_invalid``, else an error."""
        problem = ImportProblem(self._index, "traits", reason)
        if not self._skip_invalid:
            raise InvalidArgument(f"profiles[{problem.index}].traits: {problem.message}")
        self._problems.append(problem)
        return []

    def finish(self) -> list[profiles_pb2.ImportProfilesRequest]:
        """Return the last messages: what is left, or the options alone for an empty import."""
        return self._flush() if self._batch or not self._sent_first else []

    def _flush(self) -> list[profiles_pb2.ImportProfilesRequest]:
        request = profiles_pb2.ImportProfilesRequest(profiles=self._batch)
        if not self._sent_first:
            request.replace, request.skip_invalid = self._replace, self._skip_invalid
        self._batch, self._batch_bytes, self._sent_first = [], 0, True
        return [request]

    def result(self, response: profiles_pb2.ImportProfilesResponse) -> ImportResult:
        """Return the server's response, its positions in the caller's terms."""
        server_problems = [
            ImportProblem(self._sent.get(error.index) or 0, error.field, error.message)
            for error in response.errors
        ]
        problems = sorted([*self._problems, *server_problems], key=lambda problem: problem.index)
        return ImportResult(response.imported, response.skipped + len(self._problems), tuple(problems))

    def error(self, error: Exception) -> Exception:
        """Return ``error`` with a server position ``profiles[i]`` rewritten in the caller's terms."""
        if not isinstance(error, InvalidArgument):
            return error
        match = _PROFILE_AT_POSITION.match(error.details)
        index = None if match is None else self._sent.get(int(match.group(1)))
        if match is None or index is None:
            return error
        rewritten = InvalidArgument(f"profiles[{index}]{error.details[match.end() :]}", error.code)
        rewritten.__cause__ = error.__cause__
        return rewritten
