"""Whether the database answers, for the gRPC health service."""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from segmentd.store.database import is_unavailable

log = logging.getLogger(__name__)


async def ping(engine: AsyncEngine, timeout_s: float = 2.0) -> bool:
    """Return whether a trivial query succeeds within ``timeout_s`` seconds; never raises.

    Any failure means the store cannot serve, whatever its kind: a dropped database, a
    rotated password or a bug must turn health NOT_SERVING, never end the probe.
    """
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
