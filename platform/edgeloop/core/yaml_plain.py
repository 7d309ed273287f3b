"""Loading plain YAML documents fast, with exactly PyYAML's safe-loader result.

A fleet file of 10,000 nodes is ~200,000 YAML nodes. libyaml parses them in
C, but PyYAML then constructs every value through a generic, generator-based
constructor, and the cyclic garbage collector re-walks the growing tree again
and again while it is built: together ~1 s, of which the parse is a tenth.

:func:`load` keeps libyaml's parser and PyYAML's resolver (so ``yes``/``on``,
octal, sexagesimal numbers and timestamps mean what YAML 1.1 and PyYAML say)
and changes only how a *plain* document is constructed: mappings, sequences
and the immutable scalars (str, int, float, bool, null, timestamp, binary),
each value built once per distinct text. Anything else — anchors used twice,
merge keys ``<<``, ``!!set``/``!!omap`` and other tags, unhashable keys —
hands the document to PyYAML's own constructor, which builds it (or reports
it) exactly as before. The collector is paused while the tree is built: the
document is acyclic by construction on the fast path, and collecting it
half-built only costs time.
"""

from __future__ import annotations

import gc
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

_PREFIX = "tag:yaml.org,2002:"
_STR, _MAP, _SEQ, _MERGE = (_PREFIX + t for t in ("str", "map", "seq", "merge"))
_IMMUTABLE_SCALARS = frozenset(
    _PREFIX + t for t in ("null", "bool", "int", "float", "timestamp", "binary")
)
"""Scalar tags whose value can be shared between equal texts (never mutated)."""


class _NotPlain(Exception):
    """The document needs PyYAML's general constructor."""


class PlainLoader(_Loader):  # type: ignore[misc]  # libyaml's loader is untyped
    """libyaml's safe loader with a fast constructor for plain documents."""

    def construct_document(self, node: Node) -> Any:
        """The plain fast path; PyYAML's constructor for anything else."""
        try:
            return _Plain(self).build(node)
        except (_NotPlain, RecursionError):
            return super().construct_document(node)


class _Plain:
    """One document's construction: scalar cache and the containers seen."""

    def __init__(self, loader: Any) -> None:
        self.loader = loader
        self.constructors = loader.yaml_constructors
        self.scalars: dict[tuple[str, str], Any] = {}
        self.seen: set[int] = set()

    def build(self, node: Node) -> Any:
        kind, tag = type(node), node.tag
        if kind is ScalarNode:
            if tag == _STR:
                return node.value
            return self._scalar(node)
        if id(node) in self.seen:  # an alias: identity and recursion need PyYAML
            raise _NotPlain
        self.seen.add(id(node))
        if kind is MappingNode and tag == _MAP:
            mapping: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                if key_node.tag == _MERGE:
                    raise _NotPlain
                key = self.build(key_node)
                try:
                    mapping[key] = self.build(value_node)
                except TypeError as exc:  # unhashable key: PyYAML words the error
                    raise _NotPlain from exc
            return mapping
        if kind is SequenceNode and tag == _SEQ:
            return [self.build(item) for item in node.value]
        raise _NotPlain

    def _scalar(self, node: Node) -> Any:
        key = (node.tag, node.value)
        try:
            return self.scalars[key]
        except KeyError:
            pass
        if node.tag not in _IMMUTABLE_SCALARS:
            raise _NotPlain
        value = self.constructors[node.tag](self.loader, node)
        self.scalars[key] = value
        return value


def load(text: str) -> Any:
    """The document in ``text`` as ``yaml.load(text, CSafeLoader)`` returns it.

    Raises:
        yaml.YAMLError: not YAML, or a document PyYAML refuses.
    """
    collecting = gc.isenabled()
    gc.disable()
    try:
        return yaml.load(text, Loader=PlainLoader)  # noqa: S506 - a safe loader
    finally:
        if collecting:
            gc.enable()
