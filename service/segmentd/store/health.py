"""Whether the database answers, for the gRPC health service."""

from __future__ import annotations

import asyncio
import logging
import weakref

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from segmentd.store.database import is_unavailable

log = logging.getLogger(__name__)


async def ping(engine: AsyncEngine, timeout_s: float = 2.0) -> bool:
    """Return whether a trivial query succeeds within ``timeout_s`` seconds; never raises.

    Any failure means the store cannot serve, whatever its kind: a dropped database, a
    rotated password or a bug must turn health NOT_SERVING, never end the probe. The query
    runs as a task of its own, one at a time per engine: on a frozen database even giving
    a connection back can hang, and the answer must still come within ``timeout_s``.
    """
    probe = _PROBES.get(engine)
    if probe is None or probe.done():
        probe = _PROBES[engine] = asyncio.ensure_future(_probe(engine, timeout_s))
    done, _ = await asyncio.wait({probe}, timeout=timeout_s)
    return bool(done) and not probe.cancelled() and probe.result()


# The probe in flight per engine: a hung one is reported as "cannot serve", never doubled.
_PROBES: weakref.WeakKeyDictionary[AsyncEngine, asyncio.Future[bool]] = weakref.WeakKeyDictionary()


async def _probe(engine: AsyncEngine, timeout_s: float) -> bool:
    try:
        async with asyncio.timeout(timeout_s), engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
    except TimeoutError:
        return False
    except Exception as error:
        if not is_unavailable(error):
            # Not a known outage: worth a look, but still "cannot serve" (the type only: no internals).
            log.warning("health probe failed with %s", type(error).__name__)
        return False
    return True
