"""``segmentd conformance``: replay the published conformance cases on a running server.

For each case, through the typed client: its user lists, the referenced segments and the
case's segment (named ``cf-<run>-…``, so nothing of the server's is touched), the profile (skipped when its
user id is already stored) and its events are written, ``EvaluateUser`` is asked with
``consistency=strong``, and everything written is deleted again. Times are moved to the
server's date first (``segmentd.conformance``); a case the server's clock cannot reproduce is
reported as skipped.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, time
from pathlib import Path
from typing import Any

import click

from segmentd.cli.common import EXIT_INVALID, EXIT_OK, client_command
from segmentd.conformance import ConformanceCase, instant, load_case, replay_problem, shift_case
from segmentd_client import Client, Event, errors


@dataclass
class _Written:
    """What one replay stored, to be deleted again whatever happens."""

    segments: list[str] = field(default_factory=list)
    lists: list[str] = field(default_factory=list)
    user_id: str | None = None


@click.command(name="conformance")
@click.option(
    "--cases",
    "cases_dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=Path("conformance/cases"),
    show_default=True,
    help="The folder of case files.",
)
@click.option("-v", "--verbose", is_flag=True, help="Print every case, not only failures and skips.")
@client_command
def conformance(cases_dir: Path, verbose: bool, client: Client) -> int:
    """Check a running server against the conformance cases; exit 1 if any case fails.

    It writes profiles (the cases' user ids) and segments (cf-<run>-...) and deletes them
    again: point it at a server meant for testing.

    \b
    Example:
      segmentd conformance --target localhost:50051
    """
    run = secrets.token_hex(3)
    counts = {"pass": 0, "fail": 0, "skip": 0}
    for index, path in enumerate(sorted(cases_dir.glob("*.json"))):
        outcome, detail = _replay(client, json.loads(path.read_text(encoding="utf-8")), f"cf-{run}-{index}")
        counts[outcome] += 1
        if outcome != "pass" or verbose:
            click.echo(f"{outcome.upper():4}  {path.stem}" + (f": {detail}" if detail else ""))
    click.echo(f"{counts['pass']} passed, {counts['fail']} failed, {counts['skip']} skipped")
    return EXIT_INVALID if counts["fail"] else EXIT_OK


def _replay(client: Client, data: Mapping[str, Any], prefix: str) -> tuple[str, str]:
    """Replay one case; return ``(pass|fail|skip, detail)``."""
    server_now = _server_now(client)
    shifted = shift_case(data, (server_now.date() - instant(data["now"]).date()).days)
    case = load_case(shifted)
    problem = replay_problem(case, server_now)
    if problem is None and _is_stored(client, case.user_id):
        problem = f"user id {case.user_id!r} is already stored on the server"
    if problem is not None:
        return "skip", problem
    names = {name: f"{prefix}-{number}" for number, name in enumerate(shifted.get("segments", {}))}
    list_names = {name: f"{prefix}-list-{number}" for number, name in enumerate(case.lists)}
    written = _Written()
    try:
        for name, members in case.lists.items():
            client.create_user_list(list_names[name])
            written.lists.append(list_names[name])
            client.add_list_members(list_names[name], sorted(members))
        _write_segments(client, shifted, {"segment": names, "in_list": list_names}, f"{prefix}-case", written)
        client.upsert_profile(case.user_id, case.traits)
        written.user_id = case.user_id
        client.record_events(_events(case))
        verdict = client.evaluate_user(case.user_id, [f"{prefix}-case"], consistency="strong")
    except errors.InvalidArgument as error:
        return "skip", f"the server refused the case's data: {error.details}"
    finally:
        _delete(client, written)
    got = f"{prefix}-case" in verdict.segments
    return ("pass", "") if got is case.expected else ("fail", f"expected {case.expected}, got {got}")


def _server_now(client: Client) -> datetime:
    return client.evaluate_profile({}).evaluated_at or datetime.now(UTC)


def _is_stored(client: Client, user_id: str) -> bool:
    try:
        client.get_profile(user_id)
    except errors.NotFound:
        return False
    return True


def _write_segments(
    client: Client,
    data: Mapping[str, Any],
    names: Mapping[str, Mapping[str, str]],
    case_name: str,
    written: _Written,
) -> None:
    """Create the referenced segments, each after those it references, then the case's own."""
    pending = dict(data.get("segments", {}))
    while pending:
        ready = [name for name, rule in pending.items() if not (_references(rule) & pending.keys())]
        if not ready:
            raise errors.InvalidArgument("segments: the case's segments reference each other in a cycle")
        for name in ready:
            client.apply_segment({"name": names["segment"][name], "rule": _renamed(pending.pop(name), names)})
            written.segments.append(names["segment"][name])
    client.apply_segment({"name": case_name, "rule": _renamed(data["rule"], names)})
    written.segments.append(case_name)


def _references(rule: Any) -> set[str]:
    return {node["segment"]["name"] for node in _nodes(rule) if isinstance(node.get("segment"), dict)}


def _nodes(value: Any) -> Iterator[dict[str, Any]]:
    if isinstance(value, dict):
        yield value
        for item in value.values():
            yield from _nodes(item)
    elif isinstance(value, list):
        for item in value:
            yield from _nodes(item)


def _renamed(rule: Any, names: Mapping[str, Mapping[str, str]]) -> Any:
    """The rule with every segment and list reference renamed to those written for this run.

    ``names`` maps a reference kind (``segment``, ``in_list``; ``inList`` is read as
    ``in_list``) to the names of this run by the case's names.
    """
    if isinstance(rule, list):
        return [_renamed(item, names) for item in rule]
    if not isinstance(rule, dict):
        return rule
    if len(rule) == 1:
        ((kind, body),) = rule.items()
        renames = names.get("in_list" if kind == "inList" else kind)
        if renames is not None and isinstance(body, dict):
            return {kind: {**body, "name": renames[body["name"]]}}
    return {key: _renamed(value, names) for key, value in rule.items()}


def _events(case: ConformanceCase) -> list[Event]:
    # Noon UTC: the store keeps only the day, and noon is that day in every reading.
    return [
        Event(case.user_id, name, count, datetime.combine(day, time(12), UTC))
        for name, day, count in case.events
    ]


def _delete(client: Client, written: _Written) -> None:
    if written.user_id is not None:
        client.delete_profile(written.user_id)
    for name in reversed(written.segments):  # the case's segment first: it references the others
        client.delete_segment(name)
    for name in written.lists:  # after the segments: a list in use cannot be deleted
        client.delete_user_list(name)


COMMANDS = [conformance]
