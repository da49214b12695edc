"""Whether the database answers, for the gRPC health service."""

from __future__ import annotations

import asyncio

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from segmentd.store.database import is_unavailable


async def ping(engine: AsyncEngine, timeout_s: float = 2.0) -> bool:
    """Return whether a trivial query succeeds within ``timeout_s`` seconds."""
    try:
        async with asyncio.timeout(timeout_s), engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
    except TimeoutError:
        return False
    except Exception as error:
        if is_unavailable(error):
            return False
        raise
    return True
