"""Named vectors of existing points: ``PUT /points/vectors`` sets some of a point's
vectors, ``POST /points/vectors/delete`` removes some; the point's other vectors and
its payload stay (Qdrant's ``UpdateVectors`` / ``DeleteVectors``). And named vectors of
a collection (Qdrant 1.19): ``PUT /collections/{name}/vectors/{vector_name}`` adds one,
``DELETE`` removes it with every point's vector of that name.

Each prepares its change into a ``Write`` (parsed and, with ``check``, validated
against the config, nothing written yet), so ``routes/batch.py`` can validate every
operation of a batch before it applies the first.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from fastapi import APIRouter, Request
from fastapi.responses import Response

from server.api.deps import CollectionDep, SettingsDep, run_cpu
from server.api.inference import embed_upsert, vector_names
from server.api.routes.common import point_ids, selection, update_result
from server.api.routing import OrjsonRoute
from server.api.schemas import (
    DeleteVectors,
    DenseVectorNameConfig,
    SparseVectorNameConfig,
    UpdateVectors,
)
from server.engine import strict_mode
from server.engine.config_requests import with_vector_name, without_vector_name
from server.engine.filters import parse_filter
from server.engine.protocols import CollectionHandle
from server.engine.vectors import merge_vector_updates
from server.errors import InvalidVector
from server.settings import Settings

router = APIRouter(tags=["points"], route_class=OrjsonRoute)

Write = Callable[[], int]
"""A prepared write: run it to apply it; it returns the operation id."""


@router.put("/collections/{name}/points/vectors")
async def update_vectors(
    request: Request,
    body: UpdateVectors,
    collection: CollectionDep,
    settings: SettingsDep,
    wait: bool = False,
) -> Response:
    def write() -> int:
        return prepare_update_vectors(body, collection, settings, check=False)()

    return update_result(request, await run_cpu(request, write), wait)


@router.post("/collections/{name}/points/vectors/delete")
async def delete_vectors(
    request: Request,
    body: DeleteVectors,
    collection: CollectionDep,
    settings: SettingsDep,
    wait: bool = False,
) -> Response:
    write = await run_cpu(request, prepare_delete_vectors, body, collection, settings)
    return update_result(request, await run_cpu(request, write), wait)


@router.put("/collections/{name}/vectors/{vector_name}")
async def create_vector_name(
    request: Request,
    vector_name: str,
    body: DenseVectorNameConfig | SparseVectorNameConfig,
    collection: CollectionDep,
    settings: SettingsDep,
    wait: bool = False,
) -> Response:
    if isinstance(body, DenseVectorNameConfig):
        kind, raw = "dense", body.dense.model_dump(exclude_none=True)
    else:
        kind, raw = "sparse", body.sparse.model_dump(exclude_none=True)
    config = with_vector_name(collection.config, vector_name, kind, raw, settings.max_vector_size)
    op_id = await run_cpu(request, collection.replace_vectors, config)
    return update_result(request, op_id, wait)


@router.delete("/collections/{name}/vectors/{vector_name}")
async def delete_vector_name(
    request: Request,
    vector_name: str,
    collection: CollectionDep,
    wait: bool = False,
) -> Response:
    config = without_vector_name(collection.config, vector_name)
    op_id = await run_cpu(request, collection.replace_vectors, config)
    return update_result(request, op_id, wait)


def prepare_update_vectors(
    body: UpdateVectors, collection: CollectionHandle, settings: Settings, *, check: bool
) -> Write:
    """Ids and filter parsed, documents embedded, strict mode checked; with ``check``
    the vectors are validated now (the write validates them again, before writing
    anything)."""
    ids = point_ids([point.id for point in body.points], settings)
    raws = [point.vector for point in body.points]
    update_filter = parse_filter(body.update_filter)
    embed_upsert(raws, vector_names(collection.config))
    strict_mode.check_update_vectors(collection, raws)
    points = list(zip(ids, raws, strict=True))
    if check:
        collection.check_vectors(merge_vector_updates(points)[1])
    return partial(collection.update_vectors, points, update_filter)


def prepare_delete_vectors(
    body: DeleteVectors, collection: CollectionHandle, settings: Settings
) -> Write:
    """The selection and the names parsed, strict mode checked; whether each name exists
    is checked when it runs, after the selection (Qdrant's order)."""
    chosen = selection(body.points, body.filter, settings)
    if not body.vector:
        raise InvalidVector("Validation error in JSON body: [vector: must specify vector names]")
    strict_mode.check_write(collection, chosen)
    return partial(collection.delete_vectors, chosen, list(body.vector))
