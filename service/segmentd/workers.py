"""``segmentd serve --workers N``: N server processes sharing one port (``SO_REUSEPORT``).

    supervisor ── migrates once, reserves the port, starts N workers, waits for all N ready
       ├─ worker 1: a whole server (its own caches, its own LISTEN connection)
       └─ worker N     the kernel spreads incoming connections across them

Each worker is what a replica is: its caches follow the others' writes through PostgreSQL's
notifications (DESIGN.md §5), within the cross-replica bound. That is why workers need
PostgreSQL: on SQLite nothing would tell one worker of another's writes, and a client whose
next connection lands on another worker would not read its own write.

With ``--metrics-port P``, worker ``n`` serves its metrics on port ``P + n`` (each process
counts its own calls; a Prometheus job scrapes them all).

On SIGTERM or SIGINT the supervisor passes SIGTERM on (each worker drains its calls) and
exits once they have; if a worker dies, the others are stopped and the supervisor exits with
a failure, for the process manager to restart the whole. If the supervisor itself dies
abruptly (SIGKILL, the OOM killer), the kernel sends each worker SIGTERM (Linux's
``PR_SET_PDEATHSIG``), so no worker outlives it.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import multiprocessing
import os
import signal
import socket
import sys
from collections.abc import Iterator
from dataclasses import replace
from multiprocessing.context import SpawnProcess
from multiprocessing.queues import Queue

from sqlalchemy.engine import make_url

from segmentd.config import Settings
from segmentd.security.tls import server_credentials
from segmentd.server import serve
from segmentd.store.migrate import migrate

log = logging.getLogger(__name__)

#: How long the workers have, together, to start serving.
START_TIMEOUT_SECONDS = 60.0


class WorkersNeedPostgreSQL(ValueError):
    """``--workers`` above 1 on SQLite."""


async def serve_workers(settings: Settings) -> int:
    """Run ``settings.workers`` server processes on one port until a signal; return the exit status.

    Raises:
        WorkersNeedPostgreSQL: the store is not PostgreSQL.
        TLSFilesError: a TLS file named in ``settings`` cannot be read.
    """
    if make_url(settings.database_url).get_backend_name() != "postgresql":
        raise WorkersNeedPostgreSQL(
            "--workers above 1 needs PostgreSQL: on SQLite, workers would not see each other's writes"
        )
    # Read here, before any worker starts: a file no worker can read is the operator's
    # mistake, to be told once as a usage error, not N worker crashes and a start timeout.
    server_credentials(settings)
    if settings.migrate:
        await migrate(settings.database_url)
    with _reserved_port(settings.host, settings.port) as port:
        context = multiprocessing.get_context("spawn")
        ready: Queue[int] = context.Queue()
        workers = [
            context.Process(
                target=_run_worker,
                args=(_worker_settings(settings, port, n), ready, os.getpid()),
                name=f"segmentd-worker-{n}",
            )
            for n in range(settings.workers)
        ]
        for worker in workers:
            worker.start()
        try:
            await asyncio.wait_for(_all_ready(ready, len(workers)), START_TIMEOUT_SECONDS)
        except TimeoutError:
            _stop(workers)
            log.error("the workers did not all start within %ss", START_TIMEOUT_SECONDS)
            return 1
    print(f"segmentd serving on port {port} ({len(workers)} workers)", flush=True)
    status = await _supervise(workers)
    _stop(workers, settings.shutdown_grace_seconds + 5)
    return status


def _worker_settings(settings: Settings, port: int, number: int) -> Settings:
    """Worker ``number``'s settings: the shared port, and metrics on a port of its own."""
    metrics_port = settings.metrics_port + number if settings.metrics_port else 0
    return replace(settings, port=port, workers=1, migrate=False, metrics_port=metrics_port)


def _run_worker(settings: Settings, ready: Queue[int], supervisor_pid: int) -> None:
    _exit_with_supervisor(supervisor_pid)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    asyncio.run(serve(settings, on_ready=ready.put))


# prctl(2) option: the signal the kernel sends this process when its parent dies.
_PR_SET_PDEATHSIG = 1


def _exit_with_supervisor(supervisor_pid: int) -> None:
    """Have the kernel SIGTERM this worker when the supervisor dies, however it dies (Linux).

    A supervisor killed with SIGKILL passes nothing on: without this its workers would go on
    serving the port, orphaned, and a restarted supervisor would start N more beside them.
    SIGTERM, so the worker drains its calls as on an ordinary shutdown.
    """
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        if (
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0
        ):  # pragma: no cover - never fails on Linux
            log.warning("cannot follow the supervisor: prctl failed (errno %d)", ctypes.get_errno())
    # The supervisor may have died before prctl: then the signal will never come.
    if os.getppid() != supervisor_pid:
        sys.exit(1)


async def _all_ready(ready: Queue[int], count: int) -> None:
    loop = asyncio.get_running_loop()
    for _ in range(count):
        await loop.run_in_executor(None, ready.get)


async def _supervise(workers: list[SpawnProcess]) -> int:
    """Wait for a signal (0) or for a worker to exit on its own (1)."""
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    while not stopping.is_set():
        if any(not worker.is_alive() for worker in workers):
            log.error("a worker exited; stopping the others")
            return 1
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), 0.5)
    return 0


def _stop(workers: list[SpawnProcess], grace: float = 5.0) -> None:
    """SIGTERM every live worker, then wait up to ``grace`` seconds for each before killing it."""
    for worker in workers:
        if worker.is_alive() and worker.pid is not None:
            with contextlib.suppress(ProcessLookupError):
                worker.terminate()
    for worker in workers:
        worker.join(grace)
        if worker.is_alive():
            worker.kill()
            worker.join()


@contextlib.contextmanager
def _reserved_port(host: str, port: int) -> Iterator[int]:
    """Hold ``port`` (or a free one, for 0) with ``SO_REUSEPORT`` until the workers have bound it.

    The socket is bound but never listens, so it receives no connections; gRPC sets
    ``SO_REUSEPORT`` on its own listening sockets, so each worker can bind the same port.
    """
    address = host.strip("[]") or "::"
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as reserved:
        reserved.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        reserved.bind((address, port))
        yield reserved.getsockname()[1]
