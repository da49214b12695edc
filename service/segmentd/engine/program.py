"""Assemble the fragments of a set of segments into one generated evaluation function.

    build_program(codes by segment name, selected names) -> Program(function, source)
        function(ctx) -> the sorted names of the selected segments that hold

The function, in the order it runs (see docs/engine.md for an example):

    get = ctx.traits.get                      context fields, once
    v0 = get(key0)  ...                       every trait path read, once (None: missing or null)
    e0 = count(event0, 0)  ...                every event count and percentile threshold, once
    s3 = (...)                                each referenced segment, after those it references
    if (...): append(name7)                   each selected segment, by name, as a condition

Names only: the trait keys, event keys, segment names and every constant of the fragments
reach the source through the namespace passed to ``exec``. The source is registered with
`linecache` under a unique file name, so tracebacks and debuggers show its lines.
"""

from __future__ import annotations

import itertools
import linecache
import re
import weakref
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Final, cast

from segmentd.engine.codegen import INDENT, SegmentCode
from segmentd.engine.context import EvaluationContext
from segmentd.engine.inline import HELPERS
from segmentd.engine.rules import JsonValue
from segmentd.errors import SegmentNotFound

#: A generated evaluation function: the sorted names of the segments that hold.
Evaluator = Callable[[EvaluationContext], list[str]]

_FILE_NUMBERS: Final = itertools.count()
_SHOWN_NAME: Final = re.compile(r"[a-z0-9-]{1,63}")  # segment names the store allows: safe in a comment


class ReferenceCycle(ValueError):
    """Segments reference each other in a cycle (the store refuses them; nothing can evaluate one)."""


@dataclass(frozen=True, slots=True)
class Program:
    """A generated evaluation function and its source.

    Attributes:
        function: ``ctx -> sorted names of the selected segments that hold``.
        source: the generated source, as registered with `linecache`.
        filename: the name tracebacks show for it.
    """

    function: Evaluator
    source: str
    filename: str


def child(value: JsonValue, key: str) -> JsonValue:
    """Step from a trait into its member ``key``: ``None`` unless it is an object holding one."""
    return value.get(key) if isinstance(value, Mapping) else None


def evaluation_order(codes: Mapping[str, SegmentCode], selected: Iterable[str]) -> list[str]:
    """Return the selected segments and all they reference, each after the segments it references.

    Raises:
        SegmentNotFound: a selected or referenced segment is not in ``codes``.
        ReferenceCycle: segments reference each other in a cycle.
    """
    order: list[str] = []
    state: dict[str, bool] = {}  # False while its references are being visited, True once done
    for root in sorted(selected):
        stack = [(root, iter(_references(codes, root)))]
        state.setdefault(root, False)
        while stack:
            name, pending = stack[-1]
            reference = next(pending, None)
            if reference is None:
                stack.pop()
                if not state[name]:
                    state[name] = True
                    order.append(name)
            elif reference not in state:
                state[reference] = False
                stack.append((reference, iter(_references(codes, reference))))
            elif not state[reference]:
                raise ReferenceCycle(f"segment {reference!r} references itself")
    return order


def _references(codes: Mapping[str, SegmentCode], name: str) -> tuple[str, ...]:
    code = codes.get(name)
    if code is None:
        raise SegmentNotFound(f"segment {name!r} does not exist")
    return code.references


def build_program(codes: Mapping[str, SegmentCode], selected: Iterable[str]) -> Program:
    """Generate, compile and register the function evaluating the ``selected`` segments.

    Raises:
        SegmentNotFound: a selected or referenced segment is not in ``codes``.
        ReferenceCycle: segments reference each other in a cycle.
    """
    chosen = frozenset(selected)
    order = evaluation_order(codes, chosen)
    assembly = _Assembly({name: codes[name] for name in order})
    referenced = {reference for name in order for reference in codes[name].references}
    for name in order:
        if name in referenced:
            assembly.segment(name, f"s{codes[name].sid} = (", ")")
    assembly.lines.extend((f"{INDENT}result = []", f"{INDENT}append = result.append"))
    for name in sorted(chosen):
        code = codes[name]
        assembly.bindings[f"name{code.sid}"] = name
        if name in referenced:
            assembly.lines.extend((f"{INDENT}if s{code.sid}:", f"{INDENT * 2}append(name{code.sid})"))
        else:
            assembly.segment(name, "if (", "):")
            assembly.lines.append(f"{INDENT * 2}append(name{code.sid})")
    assembly.lines.append(f"{INDENT}return result")
    return assembly.compile()


class _Assembly:
    """The function's lines, the locals it hoists and the namespace it reads."""

    def __init__(self, codes: Mapping[str, SegmentCode]) -> None:
        self.codes = codes
        self.head: list[str] = ["def evaluate(ctx):"]
        self.lines: list[str] = []
        self.bindings: dict[str, object] = {**HELPERS, "child": child}
        self.locals: dict[tuple[str, object], str] = {}

    def segment(self, name: str, opener: str, closer: str) -> None:
        """Append a segment's expression between ``opener`` and ``closer``."""
        code = self.codes[name]
        mapping = {f"p{i}": self._path(path) for i, path in enumerate(code.paths)}
        mapping.update((f"e{i}", self._event(key)) for i, key in enumerate(code.events))
        mapping.update((f"t{i}", self._threshold(key)) for i, key in enumerate(code.thresholds))
        mapping.update((f"r{i}", f"s{self.codes[other].sid}") for i, other in enumerate(code.references))
        for context_field in sorted(code.context_fields):
            self._hoist(("context", context_field), context_field, f"ctx.{context_field}")
        shown = f" {name!r}" if _SHOWN_NAME.fullmatch(name) else ""
        self.lines.append(f"{INDENT}# segment #{code.sid}{shown}")
        self.lines.append(f"{INDENT}{opener}")
        self.lines.extend(f"{INDENT * 2}{line.format_map(mapping)}" for line in code.lines)
        self.lines.append(f"{INDENT}{closer}")

    def _hoist(self, key: tuple[str, object], local: str, value: str) -> str:
        """Assign ``value`` to ``local`` at the top of the function, once per ``key``."""
        if key not in self.locals:
            self.locals[key] = local
            self.head.append(f"{INDENT}{local} = {value}")
        return self.locals[key]

    def _path(self, path: tuple[str, ...]) -> str:
        if ("path", path) in self.locals:
            return self.locals[("path", path)]
        if len(path) == 1:
            getter = self._hoist(("context", "get"), "get", "ctx.traits.get")
            number = len(self.locals)
            key = self._bind(f"key{number}", path[0])
            return self._hoist(("path", path), f"v{number}", f"{getter}({key})")
        parent = self._path(path[:-1])
        number = len(self.locals)
        key = self._bind(f"key{number}", path[-1])
        step = (
            f"({parent}.get({key}) if {parent}.__class__ is dict"
            f" else None if {parent} is None else child({parent}, {key}))"
        )
        return self._hoist(("path", path), f"v{number}", step)

    def _event(self, key: tuple[str, int]) -> str:
        if ("event", key) in self.locals:
            return self.locals[("event", key)]
        count = self._hoist(("context", "count"), "count", "ctx.event_counts.get")
        number = len(self.locals)
        return self._hoist(("event", key), f"e{number}", f"{count}({self._bind(f'event{number}', key)}, 0)")

    def _threshold(self, key: tuple[str, float]) -> str:
        if ("pct", key) in self.locals:
            return self.locals[("pct", key)]
        threshold = self._hoist(("context", "threshold"), "threshold", "ctx.percentile_thresholds.get")
        number = len(self.locals)
        return self._hoist(("pct", key), f"t{number}", f"{threshold}({self._bind(f'pct{number}', key)})")

    def _bind(self, name: str, value: object) -> str:
        self.bindings[name] = value
        return name

    def compile(self) -> Program:
        """Compile the function, with every fragment's constants in its namespace."""
        source = "\n".join((*self.head, *self.lines)) + "\n"
        filename = f"<segmentd-generated-{next(_FILE_NUMBERS)}>"
        namespace = dict(self.bindings)
        for code in self.codes.values():
            namespace.update(code.bindings)
        exec(compile(source, filename, "exec"), namespace)  # names only: see the module docstring
        function = cast("Evaluator", namespace.pop("evaluate"))
        linecache.cache[filename] = (len(source), None, source.splitlines(keepends=True), filename)
        weakref.finalize(function, linecache.cache.pop, filename, None)
        return Program(function, source, filename)
