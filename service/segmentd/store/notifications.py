"""Change notifications from PostgreSQL, so every replica's caches follow every write.

Triggers (migrations 0001 and 0003) send ``NOTIFY segmentd_segments`` when any segment
changes and ``NOTIFY segmentd_profiles, '<user id>'`` (or ``'*'`` for large statements)
when a profile or its events change, and (migration 0007) ``NOTIFY segmentd_keys`` when an
API key is revoked, changed or deleted — whether the write came through a replica or
straight from SQL. A :class:`ChangeListener` keeps one dedicated connection listening and
hands each notification to callbacks.

Notifications sent while the connection is down are lost, so every (re)connection first
starts listening, then calls ``reset`` to drop everything cached: nothing cached before
the gap survives it. A silent network failure is caught by a periodic probe; the caches'
TTLs remain the safety net behind all of this.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
from sqlalchemy.engine import URL

log = logging.getLogger(__name__)

PROFILES_CHANNEL = "segmentd_profiles"
SEGMENTS_CHANNEL = "segmentd_segments"
KEYS_CHANNEL = "segmentd_keys"
#: The payload on ``PROFILES_CHANNEL`` meaning "any profile may have changed".
EVERY_PROFILE = "*"
#: The most users one statement's notifications name (the triggers of migrations 0003 and
#: 0004); past that many they send ``EVERY_PROFILE``.
NAMED_USERS_PER_STATEMENT = 100
#: How the listening connection names itself in pg_stat_activity.
LISTENER_APPLICATION_NAME = "segmentd-listener"


@dataclass(frozen=True, slots=True)
class ChangeCallbacks:
    """What to do on each kind of change.

    Attributes:
        profile_changed: called with a user id, or ``None`` when any profile may have changed.
        segments_changed: called when any segment changed, with the catalogue version the
            change made (``None`` if the payload carries none) and when it was received.
        reset: called after (re)connecting: changes made while not listening are unknown.
        keys_changed: called when any API key was revoked, changed or deleted.
    """

    profile_changed: Callable[[str | None], None]
    segments_changed: Callable[[int | None, datetime], None]
    reset: Callable[[], None]
    keys_changed: Callable[[], None] = lambda: None


class ChangeListener:
    """Listens for change notifications on a dedicated PostgreSQL connection.

    Args:
        url: the database URL (any PostgreSQL driver name).
        callbacks: what to do on each change.
        retry_seconds: pause between reconnection attempts.
        probe_seconds: how often an idle connection is checked to be alive.
    """

    def __init__(
        self, url: URL, callbacks: ChangeCallbacks, retry_seconds: float = 1.0, probe_seconds: float = 10.0
    ) -> None:
        self._dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
        self._callbacks = callbacks
        self._retry_seconds = retry_seconds
        self._probe_seconds = probe_seconds
        self._task: asyncio.Task[None] | None = None
        self.listening = asyncio.Event()

    def start(self) -> None:
        """Start listening in the background (reconnecting as needed) until :meth:`stop`."""
        self._task = asyncio.create_task(self._run(), name="segmentd-change-listener")

    async def stop(self) -> None:
        """Stop listening and close the connection."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            try:
                await self._listen_once()
            except (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
                log.warning("change notifications interrupted (%s); reconnecting", error)
            finally:
                self.listening.clear()
                self._callbacks.reset()
            await asyncio.sleep(self._retry_seconds)

    async def _listen_once(self) -> None:
        connection = await asyncpg.connect(
            self._dsn,
            timeout=self._probe_seconds,
            server_settings={"application_name": LISTENER_APPLICATION_NAME},
        )
        try:
            closed = asyncio.Event()
            connection.add_termination_listener(lambda _connection: closed.set())
            await connection.add_listener(PROFILES_CHANNEL, self._on_profiles)
            await connection.add_listener(SEGMENTS_CHANNEL, self._on_segments)
            await connection.add_listener(KEYS_CHANNEL, self._on_keys)
            # Listening first, then forgetting: a change in between is seen one way or the other.
            self._callbacks.reset()
            self.listening.set()
            while not closed.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(closed.wait(), self._probe_seconds)
                    break
                await connection.fetchval("SELECT 1", timeout=self._probe_seconds)
            raise ConnectionResetError("the notification connection was closed")
        finally:
            connection.terminate()

    def _on_profiles(self, _connection: Any, _pid: int, _channel: str, payload: str) -> None:
        self._callbacks.profile_changed(None if payload == EVERY_PROFILE else payload)

    def _on_keys(self, _connection: Any, _pid: int, _channel: str, _payload: str) -> None:
        self._callbacks.keys_changed()

    def _on_segments(self, _connection: Any, _pid: int, _channel: str, payload: str) -> None:
        # The trigger sends the new catalogue version; anything else means "something changed".
        version = int(payload) if payload.isdecimal() else None
        self._callbacks.segments_changed(version, datetime.now(UTC))
