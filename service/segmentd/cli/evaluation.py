"""``segmentd eval | explain | members | count``: verdicts and members, through the typed client."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Final

import click
from rich.console import Console
from rich.tree import Tree

from segmentd.cli.common import EXIT_OK, client_command, echo_json
from segmentd.cli.exports import FORMATS, export_members
from segmentd_client import Client, ExplanationNode

_CONSISTENCY = click.Choice(["cached", "strong"])


@click.command(name="eval")
@click.argument("user_id")
@click.option(
    "--segment", "segments", multiple=True, metavar="NAME", help="Test only this segment (repeatable)."
)
@click.option(
    "--consistency", type=_CONSISTENCY, default="cached", show_default=True, help="strong: skip every cache."
)
@click.option(
    "-o", "--output", "output_format", type=click.Choice(["text", "json"]), default="text", show_default=True
)
@client_command
def evaluate(
    user_id: str, segments: tuple[str, ...], consistency: str, output_format: str, client: Client
) -> int:
    """Print the segments a stored user is in, one name per line.

    \b
    Example:
      segmentd eval user-42
      segmentd eval user-42 --segment free --segment upgrade-candidates -o json
    """
    evaluation = client.evaluate_user(
        user_id, segments, consistency="strong" if consistency == "strong" else "cached"
    )
    if output_format == "json":
        echo_json({"user_id": user_id, **dataclasses.asdict(evaluation)})
    else:
        for name in evaluation.segments:
            click.echo(name)
    return EXIT_OK


@click.command()
@click.argument("user_id")
@click.argument("segment")
@client_command
def explain(user_id: str, segment: str, client: Client) -> int:
    """Show why a user is in a segment or not: the rule tree, ✓ or ✗ per node, and the values seen.

    \b
    Example:
      segmentd explain user-42 upgrade-candidates
    """
    why = client.explain(user_id, segment)
    verdict = "is a member" if why.matched else "is not a member"
    tree = Tree(f"{_mark(why.matched)} {user_id} {verdict} of {why.segment_name} (v{why.segment_version})")
    _add(tree, why.root)
    console = Console(highlight=False, emoji=False)
    if not console.is_terminal:  # a file or a pipe: never cut a line
        console = Console(highlight=False, emoji=False, width=10_000)
    console.print(tree)
    return EXIT_OK


def _mark(matched: bool) -> str:
    return "✓" if matched else "✗"


def _add(tree: Tree, node: ExplanationNode) -> None:
    branch = tree.add(f"{_mark(node.matched)} {node.detail or node.kind}", highlight=False)
    for child in node.children:
        _add(branch, child)


@click.command()
@click.argument("segment")
@click.option("--format", "file_format", type=click.Choice(FORMATS), default="csv", show_default=True)
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write to FILE (default: stdout).",
)
@click.option(
    "--resume", is_flag=True, help="Continue an interrupted export to --output from where it stopped."
)
@client_command
def members(segment: str, file_format: str, output: Path | None, resume: bool, client: Client) -> int:
    """Stream a segment's members (user ids, ascending), as CSV or JSON Lines.

    With --output, the export can be resumed: the token of the last chunk written is kept
    beside the file (FILE.token) until the listing is complete, and --resume continues
    from it. A stream broken in flight is resumed on its own.

    \b
    Example:
      segmentd members upgrade-candidates > members.csv
      segmentd members upgrade-candidates --format jsonl --output members.jsonl
      segmentd members upgrade-candidates --output members.csv --resume
    """
    written = export_members(client, segment, file_format, output, resume)
    if output is not None:
        click.echo(f"wrote {written} members to {output}", err=True)
    return EXIT_OK


@click.command()
@click.argument("segment")
@client_command
def count(segment: str, client: Client) -> int:
    """Print the number of members of a segment.

    \b
    Example:
      segmentd count upgrade-candidates
    """
    click.echo(client.count_members(segment))
    return EXIT_OK


COMMANDS: Final = (evaluate, explain, members, count)
