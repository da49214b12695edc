"""The ``segmentd`` command: one entry point, one module per command group.

    segmentd serve | migrate                           server.py      the server itself
    segmentd apply | get | list | delete | diff        segments.py    segment definitions
    segmentd eval | explain | members | count          evaluation.py  verdicts and members
    segmentd profile get|set | events record           profiles.py    profiles and events
    segmentd events prune                              maintenance.py event retention (database)
    segmentd demo                                      demo.py        demo data + starter library
    segmentd import FILE                               importing.py   bulk profiles from a file
    segmentd keys create|list|revoke                   keys.py        API keys (on the database)
    segmentd lists create|get|list|delete|import       lists.py       user lists
    segmentd stats | compare                           stats.py       segment statistics, overlaps
    segmentd conformance                               conformance.py the published cases, on a server

Every command but ``serve`` and ``migrate`` is a thin caller of the typed client
(``segmentd_client.Client``), so scripts and the command line share one code path. Exit codes
are listed in ``common.py`` and in the README.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import click

from segmentd.cli import (
    conformance,
    demo,
    evaluation,
    importing,
    keys,
    lists,
    maintenance,
    profiles,
    segments,
    server,
    stats,
)
from segmentd.cli.common import EXIT_OK, EXIT_USAGE, CommandFailed, echo_error


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
def cli() -> None:
    """Which segments does this user belong to? Which users are in this segment?

    \b
    Start a server, then talk to it (default localhost:50051, or --target / SEGMENTD_TARGET):
      segmentd serve
      segmentd apply -f examples/segments/
      segmentd eval user-42
      segmentd explain user-42 upgrade-candidates
      segmentd members upgrade-candidates --output members.csv

    \b
    Exit codes: 0 success, 1 invalid input, 2 usage error, 3 server unreachable,
    4 not found, 5 conflict, 6 not allowed (API key), 7 server error.
    """


for _module in (server, demo, segments, evaluation, profiles, importing, keys, lists, stats, conformance):
    for _command in _module.COMMANDS:
        cli.add_command(_command)
# Maintenance runs against the database, so it lives apart from the client commands.
for _command in maintenance.COMMANDS:
    profiles.events.add_command(_command)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``segmentd`` command line with ``argv``; return the exit status.

    Raises:
        SystemExit: a usage error (status 2), after printing it.
    """
    try:
        status = cli.main(
            args=list(argv) if argv is not None else None, prog_name="segmentd", standalone_mode=False
        )
    except click.exceptions.Abort:
        echo_error("interrupted")
        return 130
    except click.ClickException as exc:
        exc.show()
        if isinstance(exc, click.UsageError):
            raise SystemExit(EXIT_USAGE) from None
        return exc.exit_code
    except CommandFailed as exc:
        echo_error(str(exc))
        return exc.status
    return status if isinstance(status, int) else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
