"""Collection aliases: a second name for a collection, switched atomically.

The zero-downtime re-index: build ``docs_v2`` beside ``docs_v1`` while clients query the
alias ``docs``, then point ``docs`` at ``docs_v2`` in one ``POST /collections/aliases``
call; every request resolves the alias when it starts, so each one sees a whole
collection, the old or the new.

Semantics follow Qdrant 1.19 (``lib/storage/src/content_manager``):

- ``create_alias`` names an existing collection (not an alias of one); the alias may not
  be a collection's name; an existing alias of that name is re-pointed.
- ``delete_alias`` of an alias that does not exist does nothing.
- ``rename_alias`` of a missing alias is a 404.
- Deleting a collection deletes its aliases; a collection cannot be created under an
  alias's name; a request naming an alias acts on the collection it names.

One deliberate difference: Qdrant applies a request's actions one by one, so a failing
action leaves the earlier ones applied. Quiver applies all of them or none (the file is
written once, after every action checked out), and also refuses to rename an alias onto
a collection's name (Qdrant allows it, which hides that collection behind the alias).
The engine calls this table under its own lock; the table itself is not thread-safe.
"""

from __future__ import annotations

from collections.abc import Container, Iterable
from dataclasses import dataclass
from pathlib import Path

from server.errors import AliasNotFound, CollectionAlreadyExists, CollectionNotFound
from server.storage.aliases import load_aliases, save_aliases


@dataclass(frozen=True, slots=True)
class CreateAlias:
    alias_name: str
    collection_name: str


@dataclass(frozen=True, slots=True)
class DeleteAlias:
    alias_name: str


@dataclass(frozen=True, slots=True)
class RenameAlias:
    old_alias_name: str
    new_alias_name: str


AliasAction = CreateAlias | DeleteAlias | RenameAlias


def new_names(action: AliasAction) -> list[str]:
    """The alias names an action brings into use (checked like collection names: they
    stand where a collection name stands in every path)."""
    if isinstance(action, CreateAlias):
        return [action.alias_name]
    if isinstance(action, RenameAlias):
        return [action.new_alias_name]
    return []


class AliasTable:
    """Alias -> collection, in memory for lookups and in ``path`` for restarts."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._aliases = load_aliases(path)

    def resolve(self, name: str) -> str:
        """The collection ``name`` means: its target when it is an alias, else itself."""
        return self._aliases.get(name, name)

    def is_alias(self, name: str) -> bool:
        return name in self._aliases

    def items(self) -> list[tuple[str, str]]:
        """Every (alias, collection) pair, by collection then alias."""
        return sorted(self._aliases.items(), key=lambda pair: (pair[1], pair[0]))

    def of(self, collection: str) -> list[str]:
        """The aliases that name ``collection``."""
        return sorted(alias for alias, target in self._aliases.items() if target == collection)

    def apply(self, actions: Iterable[AliasAction], collections: Container[str]) -> None:
        """Apply ``actions`` in order, each seeing the ones before it; if any is refused,
        none is applied. ``collections``: the names of the existing collections."""
        updated = dict(self._aliases)
        for action in actions:
            _apply(updated, action, collections)
        self._store(updated)

    def drop_collection(self, collection: str) -> None:
        """Forget the aliases of a deleted collection."""
        self._store({a: c for a, c in self._aliases.items() if c != collection})

    def keep_only(self, collections: Container[str]) -> None:
        """Forget aliases of collections that are gone (a crash between a collection's
        delete and the rewrite of this file)."""
        self._store({a: c for a, c in self._aliases.items() if c in collections})

    def _store(self, updated: dict[str, str]) -> None:
        if updated != self._aliases:
            save_aliases(self._path, updated)
            self._aliases = updated


def _apply(aliases: dict[str, str], action: AliasAction, collections: Container[str]) -> None:
    if isinstance(action, CreateAlias):
        if action.collection_name not in collections:
            raise CollectionNotFound(action.collection_name)
        _check_free(action.alias_name, collections)
        aliases[action.alias_name] = action.collection_name
    elif isinstance(action, DeleteAlias):
        aliases.pop(action.alias_name, None)
    else:
        target = aliases.pop(action.old_alias_name, None)
        if target is None:
            raise AliasNotFound(action.old_alias_name)
        _check_free(action.new_alias_name, collections)
        aliases[action.new_alias_name] = target


def _check_free(alias: str, collections: Container[str]) -> None:
    """An alias may not take a collection's name (Qdrant's error for create_alias)."""
    if alias in collections:
        raise CollectionAlreadyExists(alias)
