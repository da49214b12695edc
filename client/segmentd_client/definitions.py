"""Segment definition files: JSON or YAML, one segment or a list of them per file.

    load_definitions(path)        a file, or every *.json / *.yaml / *.yml file of a folder
    references(definition)        the segment names its rule refers to
    in_dependency_order(defs)     referenced segments first, so each can be written in turn

A definition is a mapping with ``name`` and ``rule`` and optionally ``description`` and
``labels``, the rule in the JSON form of ``proto/segmentd/v1/rules.proto``. YAML needs
PyYAML, installed with the ``yaml`` extra (``pip install 'segmentd-client[yaml]'``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Final

from segmentd_client._convert import nested_deeper_than

#: The file suffixes read, and whether they hold YAML.
YAML_BY_SUFFIX: Final = {".json": False, ".yaml": True, ".yml": True}


class DefinitionError(ValueError):
    """A definition file cannot be read or holds no valid definitions; the message names it."""


def load_definitions(path: str | Path, *, recursive: bool = False) -> list[dict[str, Any]]:
    """Return the segment definitions of a file, or of every definition file in a folder.

    A folder's files are read in name order; with ``recursive``, its subfolders' too (by
    path; hidden folders and files, such as ``.git``, are skipped).

    Raises:
        DefinitionError: a file is missing, unreadable, of an unknown type, or does not
            hold a definition or a list of them.
    """
    path = Path(path)
    if path.is_dir():
        candidates = path.rglob("*") if recursive else path.iterdir()
        files = sorted(
            file
            for file in candidates
            if file.suffix.lower() in YAML_BY_SUFFIX
            and file.is_file()
            and not any(part.startswith(".") for part in file.relative_to(path).parts)
        )
        return [definition for file in files for definition in _load_file(file)]
    return _load_file(path)


def _load_file(path: Path) -> list[dict[str, Any]]:
    is_yaml = YAML_BY_SUFFIX.get(path.suffix.lower())
    if is_yaml is None:
        raise DefinitionError(f"{path}: not a .json, .yaml or .yml file")
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise DefinitionError(f"{path}: {exc.strerror or exc}") from None
    data = _parse_yaml(path, text) if is_yaml else _parse_json(path, text)
    if nested_deeper_than(data, MAX_NESTING):
        raise DefinitionError(f"{path}: nested more than {MAX_NESTING} levels deep")
    items = data if isinstance(data, list) else [data]
    for position, item in enumerate(items, 1):
        where = f"{path}" if len(items) == 1 else f"{path}, item {position}"
        if not isinstance(item, dict) or not isinstance(item.get("name"), str) or "rule" not in item:
            raise DefinitionError(f"{where}: a segment definition is a mapping with a name and a rule")
    return items


#: The deepest a definition file may nest lists and mappings: a rule's groups nest at most 32
#: deep on the server, three levels each (``{"all": {"rules": [...]}}``). Deeper files are
#: refused here, before the recursive walks below (and the parsers) could exhaust the stack.
MAX_NESTING = 200


def _parse_json(path: Path, text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise DefinitionError(f"{path}: not valid JSON: {exc}") from None
    except RecursionError:
        raise DefinitionError(f"{path}: nested more than {MAX_NESTING} levels deep") from None


def _parse_yaml(path: Path, text: str) -> Any:
    try:
        import yaml
    except ImportError:  # pragma: no cover - depends on what is installed
        raise DefinitionError(
            f"{path}: reading YAML needs PyYAML: pip install 'segmentd-client[yaml]'"
        ) from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise DefinitionError(f"{path}: not valid YAML: {exc}") from None
    except RecursionError:
        raise DefinitionError(f"{path}: nested more than {MAX_NESTING} levels deep") from None


def check_nesting(definition: Mapping[str, Any]) -> None:
    """Refuse a definition given in code that nests deeper than a file may (``MAX_NESTING``).

    Raises:
        DefinitionError: naming the segment.
    """
    if nested_deeper_than(dict(definition), MAX_NESTING):
        raise DefinitionError(
            f"segment {definition.get('name')!r}: nested more than {MAX_NESTING} levels deep"
        )


def references(definition: Mapping[str, Any]) -> set[str]:
    """Return the names of the segments a definition's rule refers to."""
    return set(_references_in(definition.get("rule")))


def _references_in(node: Any) -> Iterator[str]:
    if isinstance(node, Mapping):
        reference = node.get("segment")
        if isinstance(reference, Mapping) and isinstance(reference.get("name"), str):
            yield reference["name"]
        for value in node.values():
            yield from _references_in(value)
    elif isinstance(node, list):
        for item in node:
            yield from _references_in(item)


def in_dependency_order(definitions: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Return the definitions with each one after those it refers to, otherwise in order.

    References to segments not among ``definitions`` are left to the server to check.

    Raises:
        DefinitionError: two definitions share a name, references form a cycle, or a
            definition nests more than ``MAX_NESTING`` levels deep.
    """
    by_name: dict[str, Mapping[str, Any]] = {}
    for definition in definitions:
        check_nesting(definition)  # before the recursive walk of its rule
        if definition["name"] in by_name:
            raise DefinitionError(f"segment {definition['name']!r} is defined twice")
        by_name[definition["name"]] = definition
    ordered: list[Mapping[str, Any]] = []
    state: dict[str, str] = {}  # "visiting" while its references are being placed, then "done"

    def place(name: str, path: tuple[str, ...]) -> None:
        if state.get(name) == "done":
            return
        if state.get(name) == "visiting":
            cycle = " -> ".join((*path[path.index(name) :], name))
            raise DefinitionError(f"segment references form a cycle: {cycle}")
        state[name] = "visiting"
        for referred in sorted(references(by_name[name]) & by_name.keys()):
            place(referred, (*path, name))
        state[name] = "done"
        ordered.append(by_name[name])

    for name in by_name:
        place(name, ())
    return ordered
