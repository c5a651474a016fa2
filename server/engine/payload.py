"""Payload helpers: JSON paths, ``with_payload`` selectors, and payload edits.

Everything here is a pure function on JSON-like values: inputs are never mutated and
edits return new dicts, so the engine can swap a point's payload in one assignment.

A *JSON path* is Qdrant's key syntax, shared by filters, payload selectors and the
payload edit endpoints::

    city                 a top-level key
    address.city         a key inside an object
    tags[]               every element of an array
    items[0].name        one element of an array, then a key
    "a.b"                a key that itself contains a dot (quoted)

Semantics follow Qdrant (checked against ``qdrant-client``'s local mode).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from server.errors import BadRequest

# A path step: a key (str), an array index (int) or every array element (None).
PathItem = str | int | None

MAX_JSON_DEPTH = 64
"""The one bound on nesting, in levels of objects and arrays: for a payload on every
write path, a filter, and the steps of a JSON path. Deeper payloads broke every read
returning them (orjson writes at most 254 levels) and deep filters or paths exhausted
Python's recursion; Qdrant's own JSON parser stops a whole body at 128 levels."""

_MAX_U64 = (1 << 64) - 1
_KEY_CHARS = re.compile(r"[\w-]+")
_MISSING = object()


@dataclass(frozen=True)
class JsonPath:
    """A parsed JSON path; ``text`` is the path as the user wrote it."""

    text: str
    items: tuple[PathItem, ...]

    def values(self, payload: dict[str, Any], *, flatten: bool = True) -> list[Any]:
        """Every value the path selects in ``payload`` (empty when it selects nothing).

        With ``flatten`` an array the path ends on contributes its elements, one level
        deep, which is how match/range/geo conditions see arrays; without it the array
        is one value (what ``values_count``, ``is_empty`` and ``nested`` look at).
        """
        first = self.items[0]
        if len(self.items) == 1 and isinstance(first, str):  # fast path: a top-level key
            value = payload.get(first, _MISSING)
            if value is _MISSING:
                return []
            if flatten and isinstance(value, list):
                return list(value)
            return [value]
        found: list[Any] = []
        _collect(payload, self.items, 0, flatten, found)
        return found


def _collect(
    data: Any, items: tuple[PathItem, ...], depth: int, flatten: bool, out: list[Any]
) -> None:
    if depth == len(items):
        if flatten and isinstance(data, list):
            out.extend(data)
        else:
            out.append(data)
        return
    item = items[depth]
    if isinstance(item, str):
        if isinstance(data, dict) and item in data:
            _collect(data[item], items, depth + 1, flatten, out)
    elif isinstance(data, list):
        if item is None:
            for element in data:
                _collect(element, items, depth + 1, flatten, out)
        elif item < len(data):
            _collect(data[item], items, depth + 1, flatten, out)


def check_depth(value: Any, what: str) -> None:
    """Refuse ``value`` if objects and arrays nest in it deeper than ``MAX_JSON_DEPTH``
    (``{}`` is one level). Iterative, so any depth is measured without recursion."""
    stack: list[tuple[Any, int]] = [(value, 1)] if isinstance(value, (dict, list)) else []
    while stack:
        node, depth = stack.pop()
        children = node.values() if isinstance(node, dict) else node
        if depth > MAX_JSON_DEPTH:
            raise BadRequest(
                f"Wrong input: {what} nests objects and arrays deeper than "
                f"{MAX_JSON_DEPTH} levels, the limit"
            )
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))


def check_payload(payload: dict[str, Any]) -> None:
    """Every payload a write stores passes here (``Collection`` encodes it after)."""
    check_depth(payload, "payload")


def parse_json_path(text: str) -> JsonPath:
    """Parse Qdrant's key syntax; raises ``ValueError`` naming what is wrong.

    Callers turn the error into their own domain error (a filter error or a bad
    request), since the same path syntax appears in several request shapes.
    """
    if not isinstance(text, str):
        raise ValueError(f"expected a string key, got {text!r}")
    if not text:
        raise ValueError("the key is empty")
    items: list[PathItem] = []
    pos = 0
    while True:
        pos = _parse_key(text, pos, items)
        pos = _parse_brackets(text, pos, items)
        if len(items) > MAX_JSON_DEPTH:
            raise ValueError(f"key {text[:80]!r} has more than {MAX_JSON_DEPTH} steps, the limit")
        if pos == len(text):
            return JsonPath(text, tuple(items))
        if text[pos] != "." or pos + 1 == len(text):
            raise ValueError(f"invalid key {text!r} at character {pos}")
        pos += 1


def _parse_key(text: str, pos: int, items: list[PathItem]) -> int:
    if text[pos] == '"':
        end = text.find('"', pos + 1)
        if end < 0:
            raise ValueError(f"invalid key {text!r}: unclosed quote")
        items.append(text[pos + 1 : end])
        return end + 1
    match = _KEY_CHARS.match(text, pos)
    if match is None:
        raise ValueError(f"invalid key {text!r} at character {pos}")
    items.append(match.group())
    return match.end()


def _parse_brackets(text: str, pos: int, items: list[PathItem]) -> int:
    while pos < len(text) and text[pos] == "[":
        end = text.find("]", pos + 1)
        if end < 0:
            raise ValueError(f"invalid key {text!r}: unclosed bracket")
        inner = text[pos + 1 : end]
        if not inner:
            items.append(None)
        elif inner.isascii() and inner.isdigit() and int(inner) <= _MAX_U64:
            items.append(int(inner))
        else:
            raise ValueError(f"invalid key {text!r}: bad array index {inner!r}")
        pos = end + 1
    return pos


def _parse_path_or_bad_request(text: Any, where: str) -> JsonPath:
    try:
        return parse_json_path(text)
    except ValueError as exc:
        raise BadRequest(f"{where}: {exc}") from None


# --- with_payload -------------------------------------------------------------------


@dataclass
class _Trie:
    """Prefix tree of selector paths; ``whole`` selects everything below a node."""

    whole: bool = False
    children: dict[PathItem, _Trie] = field(default_factory=dict)

    @classmethod
    def of(cls, paths: Iterable[JsonPath]) -> _Trie:
        root = cls()
        for path in paths:
            node = root
            for item in path.items[:-1]:
                node = node.children.setdefault(item, cls())
                if node.whole:  # a shorter path already selects all of this
                    break
            else:
                leaf = node.children.setdefault(path.items[-1], cls())
                leaf.whole = True
                leaf.children.clear()
        return root


def _include(value: Any, node: _Trie) -> Any:
    if isinstance(value, dict):
        kept: dict[str, Any] = {}
        for key, item in value.items():
            child = node.children.get(key)
            if child is not None:
                kept[key] = item if child.whole else _include(item, child)
        return kept
    if isinstance(value, list):
        # Only `[]` reaches into arrays; `a[0]` selects nothing, as in Qdrant.
        child = node.children.get(None)
        if child is None:
            return []
        return list(value) if child.whole else [_include(item, child) for item in value]
    return value


def _exclude(value: Any, node: _Trie) -> Any:
    if isinstance(value, dict):
        kept: dict[str, Any] = {}
        for key, item in value.items():
            child = node.children.get(key)
            if child is None:
                kept[key] = item
            elif not child.whole:
                kept[key] = _exclude(item, child)
        return kept
    if isinstance(value, list):
        child = node.children.get(None)
        if child is None:
            return list(value)
        return [] if child.whole else [_exclude(item, child) for item in value]
    return value


SelectorMode = Literal["all", "none", "include", "exclude"]


@dataclass(frozen=True)
class PayloadSelector:
    """Which parts of a payload a read returns (the request's ``with_payload``)."""

    mode: SelectorMode
    keys: tuple[JsonPath, ...] = ()
    _trie: _Trie = field(default_factory=_Trie, compare=False, repr=False)

    @classmethod
    def of(cls, mode: SelectorMode, keys: Sequence[JsonPath] = ()) -> PayloadSelector:
        return cls(mode, tuple(keys), _Trie.of(keys))

    def apply(self, payload: dict[str, Any]) -> dict[str, Any] | None:
        """The selected payload as a new dict, or None when payloads are not wanted.

        Nested values may be shared with ``payload``; treat the result as read-only.
        """
        if self.mode == "none":
            return None
        if self.mode == "all":
            return dict(payload)
        if self.mode == "include":
            return _include(payload, self._trie)  # type: ignore[no-any-return]
        return _exclude(payload, self._trie)  # type: ignore[no-any-return]


def parse_with_payload(raw: Any, *, default: bool = False) -> PayloadSelector:
    """Parse ``with_payload``: a bool, a key list, ``{"include": [..]}`` or ``{"exclude": [..]}``.

    ``default`` is used when the field is absent (``None``), because Qdrant's default
    differs by endpoint (scroll returns payloads, search does not). An empty include
    list returns an empty payload rather than none, as Qdrant does.
    """
    if raw is None:
        raw = default
    if isinstance(raw, bool):
        return PayloadSelector.of("all" if raw else "none")
    if isinstance(raw, list):
        return PayloadSelector.of("include", _parse_keys(raw, "with_payload"))
    if isinstance(raw, dict):
        present = {name: value for name, value in raw.items() if value is not None}
        if len(present) == 1 and next(iter(present)) in ("include", "exclude"):
            mode: SelectorMode = "include" if "include" in present else "exclude"
            return PayloadSelector.of(mode, _parse_keys(present[mode], f"with_payload.{mode}"))
        raise BadRequest(
            f"with_payload: expected exactly one of 'include' or 'exclude', got {sorted(raw)}"
        )
    raise BadRequest(
        f"with_payload: expected a bool, a list of keys, or an include/exclude object, got {raw!r}"
    )


def _parse_keys(raw: Any, where: str) -> list[JsonPath]:
    if not isinstance(raw, list):
        raise BadRequest(f"{where}: expected a list of keys, got {raw!r}")
    return [_parse_path_or_bad_request(key, f"{where}[{i}]") for i, key in enumerate(raw)]


# --- payload edits --------------------------------------------------------------------


def set_payload(
    payload: dict[str, Any], new_values: dict[str, Any], key: str | None = None
) -> dict[str, Any]:
    """Qdrant's ``set_payload``: merge ``new_values`` into the payload, returning a new dict.

    Without ``key`` the merge is at the top level. With ``key`` (a JSON path) the merge
    happens inside the object(s) the path selects: missing objects along the way are
    created, a non-object in the way of a key is replaced by an object, a non-array in
    the way of an index becomes an empty array (and nothing is set below it), and an
    index past the end of an array sets nothing. A null in ``new_values`` removes that
    key instead of storing null, as Qdrant's merge does.
    """
    if not isinstance(new_values, dict):
        raise BadRequest(f"payload: expected an object, got {new_values!r}")
    check_payload(new_values)
    result = copy.deepcopy(payload)
    if key is None:
        return _merged(result, copy.deepcopy(new_values))
    path = _parse_path_or_bad_request(key, "key")
    holder: list[Any] = [result]
    _set_at(holder, 0, path.items, copy.deepcopy(new_values))
    return result


def _merged(target: Any, new_values: dict[str, Any]) -> dict[str, Any]:
    """Merge into ``target`` if it is an object (mutating it), else into a fresh one."""
    merged: dict[str, Any] = target if isinstance(target, dict) else {}
    for name, value in new_values.items():
        if value is None:
            merged.pop(name, None)
        else:
            merged[name] = value
    return merged


def _set_at(
    parent: Any, slot: Any, items: tuple[PathItem, ...], new_values: dict[str, Any]
) -> None:
    """Walk ``items`` from the node at ``parent[slot]``, merging at the end of the path.

    Works on the private deep copy made by ``set_payload``, so mutation is safe here.
    """
    node = parent[slot]
    item, rest = items[0], items[1:]
    if isinstance(item, str):
        if not isinstance(node, dict):
            node = parent[slot] = {}
        if not rest:
            node[item] = _merged(node.get(item), new_values)
        else:
            node.setdefault(item, {})
            _set_at(node, item, rest, new_values)
        return
    if not isinstance(node, list):
        parent[slot] = []
        return
    targets = range(len(node)) if item is None else range(item, min(item + 1, len(node)))
    for index in targets:
        # a wildcard writes to several elements: each gets its own copy, no aliasing
        values = copy.deepcopy(new_values) if item is None else new_values
        if rest:
            _set_at(node, index, rest, values)
        else:
            node[index] = _merged(node[index], values)


def delete_payload_keys(payload: dict[str, Any], keys: list[str]) -> dict[str, Any]:
    """Qdrant's ``delete_payload``: remove each JSON path, returning a new dict.

    A path that selects nothing is a no-op. A path ending in ``[]`` empties the array;
    one ending in an index ``[i]`` is a no-op, as in Qdrant (deleting by position
    would not be idempotent).
    """
    if not isinstance(keys, list):
        raise BadRequest(f"keys: expected a list of keys, got {keys!r}")
    paths = [_parse_path_or_bad_request(key, f"keys[{i}]") for i, key in enumerate(keys)]
    result = copy.deepcopy(payload)
    for path in paths:
        _delete_at(result, path.items)
    return result


def _delete_at(node: Any, items: tuple[PathItem, ...]) -> None:
    item, rest = items[0], items[1:]
    if not rest:
        if isinstance(item, str) and isinstance(node, dict):
            node.pop(item, None)
        elif item is None and isinstance(node, list):
            node.clear()
        return
    if isinstance(item, str):
        if isinstance(node, dict) and item in node:
            _delete_at(node[item], rest)
    elif isinstance(node, list):
        if item is None:
            for element in node:
                _delete_at(element, rest)
        elif item < len(node):
            _delete_at(node[item], rest)
