"""Bounds on the size of a rule tree, checked by `segmentd.engine.validation.validate_rule`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True, slots=True)
class RuleLimits:
    """Configurable limits on a rule; exceeding one is an ``InvalidRule`` naming the field.

    Attributes:
        max_depth: the deepest a node may sit; the root is at depth 1.
        max_nodes: the most nodes (groups and leaves) a rule may have.
        max_regex_length: the longest ``MATCHES_REGEX`` pattern, in characters.
        max_list_values: the most elements an ``IN``/``NOT_IN`` list may have.
        max_attribute_length: the longest attribute path, in characters.
    """

    max_depth: int = 32
    max_nodes: int = 1000
    max_regex_length: int = 1000
    max_list_values: int = 1000
    max_attribute_length: int = 256


#: The limits used when none are configured.
DEFAULT_LIMITS: Final = RuleLimits()
