"""A PostgreSQL cluster of the test's own: created with initdb in a temporary directory on a
free port, so a test can stop, freeze and break it without touching the shared server.

    cluster = DisposableCluster.create()     initdb + start (about a second)
    cluster.stop() / start()                 an outage and a restart
    cluster.freeze() / thaw()                SIGSTOP / SIGCONT of the postmaster and its backends
    cluster.destroy()                        stop and delete everything

As root (CI), the server runs as the ``postgres`` OS user, which initdb requires.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path


def _bin(name: str) -> str:
    found = shutil.which(name) or next(iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))), None)
    if found is None:
        raise FileNotFoundError(f"{name} not found: install the PostgreSQL server")
    return found


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _as_postgres(command: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return command
    return ["runuser", "-u", "postgres", "--", *command]


@dataclass
class DisposableCluster:
    """A running PostgreSQL cluster in ``directory``, listening on 127.0.0.1:``port``."""

    directory: Path
    port: int

    @classmethod
    def create(cls) -> DisposableCluster:
        """Initialise and start a new cluster with trust authentication."""
        directory = Path(tempfile.mkdtemp(prefix="segmentd-faults-"))
        if os.geteuid() == 0:
            account = pwd.getpwnam("postgres")
            os.chown(directory, account.pw_uid, account.pw_gid)
        cluster = cls(directory, _free_port())
        subprocess.run(
            _as_postgres(
                [_bin("initdb"), "-D", str(cluster.data), "-A", "trust", "-U", "postgres", "-E", "UTF8"]
                + ["--no-sync", "--locale=C"]
            ),
            check=True,
            capture_output=True,
        )
        cluster.start()
        return cluster

    @property
    def data(self) -> Path:
        """The data directory."""
        return self.directory / "data"

    def url(self, database: str = "postgres") -> str:
        """The URL of ``database`` on this cluster."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        options = f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 -c fsync=off"
        subprocess.run(
            _as_postgres(
                [_bin("pg_ctl"), "-D", str(self.data), "-o", options, "-l", str(self.directory / "log")]
            )
            + ["-w", "start"],
            check=True,
            capture_output=True,
        )

    def stop(self, mode: str = "immediate") -> None:
        """Stop the server (``immediate``: as a crash would, no shutdown checkpoint)."""
        subprocess.run(
            _as_postgres([_bin("pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop"]),
            check=True,
            capture_output=True,
        )

    def _pids(self) -> list[int]:
        postmaster = int((self.data / "postmaster.pid").read_text().split()[0])
        children = Path(f"/proc/{postmaster}/task/{postmaster}/children").read_text().split()
        return [postmaster, *map(int, children)]

    def freeze(self) -> None:
        """Stop every process of the server (SIGSTOP): connections stay open, nothing answers."""
        for pid in self._pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGSTOP)

    def thaw(self) -> None:
        """Let the frozen processes run again (SIGCONT)."""
        for pid in self._pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)

    def destroy(self) -> None:
        """Stop the server if it runs, and delete its directory."""
        with contextlib.suppress(Exception):
            self.thaw()
        with contextlib.suppress(subprocess.CalledProcessError):
            self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)
