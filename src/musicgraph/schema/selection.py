"""What a query selects below a field, so a resolver can prefetch what its children will read.

A child resolver that finds its data already attached by its parent can be synchronous, and a
synchronous field is several times cheaper to execute than an ``async`` one (no coroutine, no
task per list item, no DataLoader future). The parent still loads through the request's
DataLoaders, one batch per level, so the number of store round trips does not change; it only
loads what the query asks for.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable, Iterator, Mapping

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    InlineFragmentNode,
    SelectionSetNode,
)

from musicgraph.schema.context import Info

#: answers by the field nodes (their ids, checked through weak references: a node's id can be
#: reused once the parser cache drops its document) and the path; a request asks the same few
#: questions of the same cached documents over and over
_answers: dict[tuple[tuple[int, ...], tuple[str, ...]], tuple[list[weakref.ref[FieldNode]], bool]]
_answers = {}
_MAX_ANSWERS = 4096


def selects(info: Info, *path: str) -> bool:
    """True when the current field's selection contains ``path`` (field names, not aliases),
    looking through inline fragments and fragment spreads. ``@skip``/``@include`` are not
    evaluated: a field they drop still counts as selected (prefetching it is only wasted work)."""
    raw = info._raw_info
    nodes = raw.field_nodes
    key = (tuple(map(id, nodes)), path)
    known = _answers.get(key)
    if known is not None and all(r() is n for r, n in zip(known[0], nodes, strict=True)):
        return known[1]
    answer = _selects(nodes, path, raw.fragments)
    if len(_answers) >= _MAX_ANSWERS:
        _answers.clear()
    _answers[key] = ([weakref.ref(n) for n in nodes], answer)
    return answer


def _selects(
    nodes: Iterable[FieldNode],
    path: tuple[str, ...],
    fragments: Mapping[str, FragmentDefinitionNode],
) -> bool:
    if not path:
        return True
    head, rest = path[0], path[1:]
    for node in nodes:
        if node.selection_set is None:
            continue
        matching = [f for f in _fields(node.selection_set, fragments) if f.name.value == head]
        if matching and _selects(matching, rest, fragments):
            return True
    return False


def _fields(
    selection_set: SelectionSetNode, fragments: Mapping[str, FragmentDefinitionNode]
) -> Iterator[FieldNode]:
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            yield selection
        elif isinstance(selection, InlineFragmentNode):
            yield from _fields(selection.selection_set, fragments)
        elif isinstance(selection, FragmentSpreadNode):
            fragment = fragments.get(selection.name.value)
            if fragment is not None:
                yield from _fields(fragment.selection_set, fragments)
