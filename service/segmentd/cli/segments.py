"""``segmentd apply | get | list | delete | diff``: segment definitions, through the typed client."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

import click
import yaml

from segmentd.cli.common import EXIT_INVALID, EXIT_OK, EXIT_USAGE, client_command, echo_json, fail, json_ready
from segmentd.cli.diffs import changes
from segmentd_client import Client, Segment


@click.command()
@click.option(
    "-f",
    "--filename",
    "paths",
    multiple=True,
    required=True,
    type=click.Path(exists=True, path_type=Path),
    help="A JSON or YAML file, or a folder of them (repeatable).",
)
@click.option("-R", "--recursive", is_flag=True, help="Read the folders given with -f and their subfolders.")
@click.option("--dry-run", is_flag=True, help="Say what would change; write nothing.")
@client_command
def apply(paths: tuple[Path, ...], recursive: bool, dry_run: bool, client: Client) -> int:
    """Create or update segments from definition files, idempotently.

    Each file holds one segment or a list, in the definition form (name, description,
    labels, rule). A segment referred to by another is applied first. Prints one line per
    segment: created NAME, updated NAME (vN -> vM) or unchanged NAME.

    \b
    Example:
      segmentd apply -f examples/segments/
      segmentd apply -R -f examples/segments/        # the starter library in starter/ too
      segmentd apply -f free.yaml -f upgrade-candidates.json --dry-run
    """
    from segmentd_client.definitions import load_definitions

    definitions = [definition for path in paths for definition in load_definitions(path, recursive=recursive)]
    if not definitions:
        fail(EXIT_INVALID, f"no segment definitions (.json, .yaml, .yml) in {', '.join(map(str, paths))}")
    for result in client.apply_segments(definitions, dry_run=dry_run):
        click.echo(f"{result}{' (dry run)' if dry_run else ''}")
    return EXIT_OK


@click.command()
@click.argument("name")
@click.option(
    "--version", type=click.IntRange(min=1), default=None, help="An older version (default: current)."
)
@click.option(
    "-o", "--output", "output_format", type=click.Choice(["yaml", "json"]), default="yaml", show_default=True
)
@client_command
def get(name: str, version: int | None, output_format: str, client: Client) -> int:
    """Show a segment: its definition, version and etag.

    The output can be applied again with `segmentd apply -f`.

    \b
    Example:
      segmentd get upgrade-candidates
      segmentd get upgrade-candidates --version 1 -o json
    """
    document = _document(client.get_segment(name, version=version or 0))
    if output_format == "json":
        echo_json(document)
    else:
        click.echo(yaml.safe_dump(json_ready(document), sort_keys=False, allow_unicode=True), nl=False)
    return EXIT_OK


def _document(segment: Segment) -> dict[str, Any]:
    return {
        **segment.definition(),
        "version": segment.version,
        "etag": segment.etag,
        "create_time": segment.create_time,
        "update_time": segment.update_time,
    }


@click.command(name="list")
@click.option(
    "--label",
    "labels",
    multiple=True,
    metavar="KEY=VALUE",
    help="Only segments with this label (repeatable).",
)
@client_command
def list_segments(labels: tuple[str, ...], client: Client) -> int:
    """List segments: name, version, labels and description, in name order.

    \b
    Example:
      segmentd list
      segmentd list --label team=growth
    """
    wanted = dict(_label(text) for text in labels)
    found = client.list_segments(labels=wanted)
    rows = [
        (
            segment.name,
            f"v{segment.version}",
            ",".join(f"{k}={v}" for k, v in sorted(segment.labels.items())),
            segment.description,
        )
        for segment in found
    ]
    widths = [
        max([len(header), *(len(row[column]) for row in rows)]) for column, header in enumerate(_HEADERS[:3])
    ]
    for row in [_HEADERS, *rows]:
        click.echo(
            "  ".join(cell.ljust(width) for cell, width in zip(row[:3], widths, strict=True)) + "  " + row[3]
        )
    return EXIT_OK


_HEADERS: Final = ("NAME", "VERSION", "LABELS", "DESCRIPTION")


def _label(text: str) -> tuple[str, str]:
    key, equals, value = text.partition("=")
    if not equals or not key:
        fail(EXIT_USAGE, f"--label {text!r}: expected KEY=VALUE")
    return key, value


@click.command()
@click.argument("name")
@client_command
def delete(name: str, client: Client) -> int:
    """Delete a segment (its past versions stay readable with get --version).

    Refused (exit 5) while other segments refer to it.

    \b
    Example:
      segmentd delete upgrade-candidates
    """
    client.delete_segment(name)
    click.echo(f"deleted {name}")
    return EXIT_OK


@click.command()
@click.argument("name")
@click.argument("versions", nargs=-1, type=click.IntRange(min=1))
@client_command
def diff(name: str, versions: tuple[int, ...], client: Client) -> int:
    """Show what changed between two versions of a segment, node by node.

    VERSIONS is two version numbers, OLD NEW; by default the last two.

    \b
    Example:
      segmentd diff upgrade-candidates
      segmentd diff upgrade-candidates 1 3
    """
    if len(versions) not in (0, 2):
        fail(EXIT_USAGE, "give two versions (OLD NEW), or none for the last two")
    if not versions:
        current = client.get_segment(name)
        if current.version < 2:
            fail(EXIT_INVALID, f"segment {name!r} has only one version")
        versions = (current.version - 1, current.version)
    old, new = (client.get_segment(name, version=version) for version in versions)
    click.echo(f"{name}: v{old.version} -> v{new.version}")
    for line in changes(old.definition(), new.definition()) or ["no change"]:
        click.echo(f"  {line}")
    return EXIT_OK


COMMANDS: Final = (apply, get, list_segments, delete, diff)
