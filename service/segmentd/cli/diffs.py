"""What changed between two versions of a segment, node by node.

    changes(old, new) -> ["rule.all.rules[1].condition.value: 80 -> 90", "labels.team: + growth", ...]

Both sides are segment definitions in their JSON form; paths are written as the server names
fields (``rule.all.rules[2].condition.value``). Mappings are compared key by key and lists
position by position, so an edited condition shows as the one value that changed, and a rule
added at the end as one added node. Pure: no I/O.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any


def changes(old: Any, new: Any, path: str = "") -> list[str]:
    """Return one line per difference between ``old`` and ``new``, in document order."""
    return list(_changes(old, new, path))


def _changes(old: Any, new: Any, path: str) -> Iterator[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        for key in [*old, *(key for key in new if key not in old)]:
            child = f"{path}.{key}" if path else str(key)
            if key not in new:
                yield f"{child}: - {_shown(old[key])}"
            elif key not in old:
                yield f"{child}: + {_shown(new[key])}"
            else:
                yield from _changes(old[key], new[key], child)
    elif isinstance(old, list) and isinstance(new, list):
        for index in range(max(len(old), len(new))):
            child = f"{path}[{index}]"
            if index >= len(new):
                yield f"{child}: - {_shown(old[index])}"
            elif index >= len(old):
                yield f"{child}: + {_shown(new[index])}"
            else:
                yield from _changes(old[index], new[index], child)
    elif old != new or type(old) is not type(new):
        yield f"{path}: {_shown(old)} -> {_shown(new)}"


def _shown(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=False)
