"""Collection aliases: change them (``POST /collections/aliases``) and list them.

The actions of one request are applied together or not at all (``engine/aliases.py``).
Listing follows Qdrant's access rules: a collection-scoped caller sees an alias only
when it may see both the alias's name and the collection it names, since a grant is
checked against the name a request uses (a grant on an alias reaches its collection).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from server.api.access import visible_collections
from server.api.deps import EngineDep, run_cpu
from server.api.envelope import ok
from server.api.routing import OrjsonRoute
from server.api.schemas import AliasOperation, ChangeAliases
from server.engine.aliases import AliasAction, CreateAlias, DeleteAlias, RenameAlias
from server.errors import BadRequest

router = APIRouter(tags=["aliases"], route_class=OrjsonRoute)


@router.post("/collections/aliases")
async def update_aliases(
    request: Request, body: ChangeAliases, engine: EngineDep, timeout: int | None = None
) -> Response:
    """``timeout`` is accepted for Qdrant's clients; the change is local and immediate."""
    actions = [_action(operation) for operation in body.actions]
    await run_cpu(request, engine.update_aliases, actions)
    return ok(request, True)


@router.get("/aliases")
async def list_aliases(request: Request, engine: EngineDep) -> Response:
    return ok(request, {"aliases": _visible(request, engine.aliases())})


@router.get("/collections/{name}/aliases")
async def collection_aliases(request: Request, name: str, engine: EngineDep) -> Response:
    """The aliases of the collection called ``name`` (an alias has none, as in Qdrant)."""
    return ok(request, {"aliases": _visible(request, engine.aliases(name))})


def _visible(request: Request, pairs: list[tuple[str, str]]) -> list[dict[str, str]]:
    names = {name for pair in pairs for name in pair}
    seen = set(visible_collections(request, names))
    return [
        {"alias_name": alias, "collection_name": collection}
        for alias, collection in pairs
        if alias in seen and collection in seen
    ]


def _action(operation: AliasOperation) -> AliasAction:
    given = [
        part
        for part in (operation.create_alias, operation.delete_alias, operation.rename_alias)
        if part is not None
    ]
    if len(given) != 1:
        raise BadRequest(
            "Wrong input: each alias action has exactly one of "
            "`create_alias`, `delete_alias` or `rename_alias`"
        )
    if operation.create_alias is not None:
        create = operation.create_alias
        return CreateAlias(create.alias_name, create.collection_name)
    if operation.delete_alias is not None:
        return DeleteAlias(operation.delete_alias.alias_name)
    assert operation.rename_alias is not None
    rename = operation.rename_alias
    return RenameAlias(rename.old_alias_name, rename.new_alias_name)
