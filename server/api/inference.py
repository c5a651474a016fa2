"""The inference step: text documents in a request become sparse vectors before the
engine sees the request.

Qdrant lets any vector of an upsert or a query be given as a document,
``{"text": ..., "model": ..., "options": {...}}``, which its inference service embeds.
Quiver runs the one model that needs no service, ``qdrant/bm25``
(``server/engine/text/bm25.py``), inside the server: here each document is replaced by
the ``{"indices", "values"}`` object it embeds to, so the engine, the WAL and the
snapshots only ever see sparse vectors. A stored point is embedded as a document (BM25
term weights), a query as a query (weight 1 per distinct token); the collection's
``idf`` modifier supplies the inverse document frequency at search time.

A document is accepted only where a sparse vector is: for a dense or multi-vector name
it is a 400 saying Quiver has no dense embedding model. A request's documents are
embedded together, one encoder call per distinct ``options`` value, so a batch upsert
costs a few numpy calls, not one Python call per point.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, MutableMapping, MutableSequence, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson
from fastapi import Request

from server.api.deps import run_cpu
from server.api.schemas import QueryRequest
from server.engine.config import DEFAULT_VECTOR, CollectionConfig
from server.engine.protocols import CollectionHandle
from server.engine.requests import VectorColumns
from server.engine.text.bm25 import Bm25Encoder, SparseEmbedding, bm25_encoder
from server.errors import InvalidDocument, UnsupportedFeature

SUPPORTED_MODELS = ("qdrant/bm25",)
"""The models a document may name (Qdrant also accepts ``bm25``, in any case)."""

_MODEL_ALIASES = frozenset({"qdrant/bm25", "bm25"})
_DOCUMENT_KEYS = frozenset({"text", "model", "options"})

Purpose = Literal["document", "query"]
Slot = tuple[MutableMapping[Any, Any] | MutableSequence[Any], Any]
"""Where a document sits in the request: its container and key (or index)."""


@dataclass(frozen=True, slots=True)
class VectorNames:
    """What a collection's vector names are, as the inference step needs them."""

    sparse: frozenset[str]
    dense: frozenset[str]

    def check_sparse(self, name: str | None) -> None:
        """A document may only fill a sparse vector."""
        if name and name in self.sparse:
            return
        if (name or DEFAULT_VECTOR) in self.dense:
            shown = f"vector {name!r}" if name else "the unnamed vector"
            raise InvalidDocument(
                f"{shown} is dense, and Quiver has no dense embedding model; give it as "
                f"numbers, or send the document to a sparse vector "
                f"({_listed(self.sparse)}) to embed it with {', '.join(SUPPORTED_MODELS)}"
            )
        if not name:
            raise InvalidDocument(
                f"name the sparse vector the document is for (`using`, or a named vector; "
                f"{_listed(self.sparse)})"
            )
        raise InvalidDocument(
            f"this collection has no sparse vector named {name!r} ({_listed(self.sparse)})"
        )


def vector_names(config: CollectionConfig) -> VectorNames:
    """The sparse and dense vector names of a collection's config."""
    return VectorNames(sparse=frozenset(config.sparse_vectors), dense=frozenset(config.vectors))


def _listed(names: Iterable[str]) -> str:
    shown = sorted(names)
    return "its sparse vectors: " + ", ".join(shown) if shown else "it has no sparse vectors"


def is_inference_object(value: Any) -> bool:
    """Whether a wire value is a document (or an image / object) to embed, rather than a
    vector. Qdrant reads the same JSON in this order: a ``{"text": str, "model": str}``
    object is a document even in a collection that names its vectors ``text``."""
    if not isinstance(value, dict) or not isinstance(value.get("model"), str):
        return False
    return isinstance(value.get("text"), str) or "image" in value or "object" in value


@dataclass
class DocumentBatch:
    """The documents of one request: collect with :meth:`add`, then :meth:`embed`
    writes each one's sparse vector back in its place."""

    purpose: Purpose
    names: VectorNames
    _groups: dict[bytes, tuple[Bm25Encoder, list[tuple[Slot, str]]]] = field(default_factory=dict)

    def add(self, container: MutableMapping[Any, Any] | MutableSequence[Any], key: Any,
            name: str | None) -> None:  # fmt: skip
        """Queue the document at ``container[key]``, bound for vector ``name``."""
        document = container[key]
        text, options = _checked(document)
        self.names.check_sparse(name)
        group = orjson.dumps(options or {}, option=orjson.OPT_SORT_KEYS)
        if group not in self._groups:  # bad options fail here, before anything is replaced
            self._groups[group] = (bm25_encoder(options), [])
        self._groups[group][1].append(((container, key), text))

    def add_vectors(self, vectors: Any) -> None:
        """Queue the documents of one point's ``vector`` field (unnamed or named)."""
        if is_inference_object(vectors):
            _checked(vectors)
            self.names.check_sparse(None)
        elif isinstance(vectors, dict):
            for name, value in vectors.items():
                if is_inference_object(value):
                    self.add(vectors, name, name)

    def embed(self) -> None:
        """Embed every queued document, one encoder call per options value."""
        for encoder, slots in self._groups.values():
            texts = [text for _, text in slots]
            encode = encoder.encode_queries if self.purpose == "query" else encoder.encode_documents
            for ((container, key), _), vector in zip(slots, encode(texts), strict=True):
                container[key] = sparse_object(vector)
        self._groups.clear()


def sparse_object(vector: SparseEmbedding) -> dict[str, list[Any]]:
    """A BM25 vector in Qdrant's wire shape."""
    return {"indices": vector.indices.tolist(), "values": vector.values.tolist()}


def embed_point_vectors(vectors: Iterable[Any], names: VectorNames) -> None:
    """Replace, in place, every document among the ``vector`` fields of upserted points."""
    batch = DocumentBatch("document", names)
    for point_vectors in vectors:
        batch.add_vectors(point_vectors)
    batch.embed()


def embed_vector_columns(columns: dict[str | None, list[Any]], names: VectorNames) -> None:
    """Replace, in place, every document in the batch form's columns (name -> values)."""
    batch = DocumentBatch("document", names)
    for name, column in columns.items():
        for i, value in enumerate(column):
            if is_inference_object(value):
                batch.add(column, i, name)
    batch.embed()


def embed_upsert(vectors: Sequence[Any], names: VectorNames) -> None:
    """Replace, in place, every document of an upsert's vectors (either form)."""
    if isinstance(vectors, VectorColumns):
        embed_vector_columns(vectors.columns, names)
    else:
        embed_point_vectors(vectors, names)


def embed_query(raw: Any, using: str | None, names: VectorNames) -> Any:
    """A query operand with its document, if it is one, embedded as a query."""
    holder = {"query": raw}
    batch = DocumentBatch("query", names)
    for container, key, name in _documents(holder, using, None):
        batch.add(container, key, name)
    batch.embed()
    return holder["query"]


async def embed_query_documents(
    request: Request, queries: list[QueryRequest], collection: CollectionHandle
) -> None:
    """The inference step of query routes: off the event loop, and only when one of
    ``queries`` holds a document (most hold none)."""
    if any(next(_documents({"query": q.query}, q.using, q.prefetch), None) for q in queries):
        await run_cpu(request, embed_query_requests, queries, vector_names(collection.config))


def embed_query_requests(requests: Iterable[QueryRequest], names: VectorNames) -> None:
    """Replace, in place, every document of these query requests: the main ``query``
    (a document, or ``{"nearest": document}``) and the ``query`` of every prefetch, at
    any depth, each bound for its own ``using``; embedded together, as queries."""
    batch = DocumentBatch("query", names)
    holders = []
    for request in requests:
        holder = {"query": request.query}
        for container, key, using in _documents(holder, request.using, request.prefetch):
            batch.add(container, key, using)
        holders.append((request, holder))
    batch.embed()
    for request, holder in holders:
        request.query = holder["query"]


Operand = tuple[dict[str, Any], str, str | None]
"""A document in a query: its container, its key there, the vector name it is for."""


_MAX_DEPTH = 64
"""Prefetch levels searched for documents; deeper requests are refused by the query
parser anyway (its bound is lower), this one only keeps the walk from recursing."""


def _documents(
    holder: dict[str, Any], using: Any, prefetch: Any, depth: int = 0
) -> Iterator[Operand]:
    """The documents of a query (``holder["query"]``) and of its prefetches."""
    operand = holder.get("query")
    name = using if isinstance(using, str) else None
    if is_inference_object(operand):
        yield holder, "query", name
    elif isinstance(operand, dict) and is_inference_object(operand.get("nearest")):
        yield operand, "nearest", name
    if depth >= _MAX_DEPTH:
        return
    for stage in prefetch if isinstance(prefetch, list) else [prefetch]:
        if isinstance(stage, dict):
            yield from _documents(stage, stage.get("using"), stage.get("prefetch"), depth + 1)


def _checked(document: dict[str, Any]) -> tuple[str, dict[str, Any] | None]:
    """A document's text and options, its model one Quiver runs."""
    if "image" in document or "object" in document:
        raise UnsupportedFeature(
            f"embedding images and objects (model {document['model']!r}); "
            f"Quiver embeds text documents with {', '.join(SUPPORTED_MODELS)}"
        )
    unknown = sorted(set(document) - _DOCUMENT_KEYS)
    if unknown:
        raise InvalidDocument(f"unknown key(s) {unknown}; a document has text, model, options")
    model, options = document["model"], document.get("options")
    if model.lower() not in _MODEL_ALIASES:
        raise InvalidDocument(
            f"unknown model {model!r}; Quiver embeds documents itself with "
            f"{', '.join(SUPPORTED_MODELS)} only (BM25, into a sparse vector)"
        )
    if options is not None and not isinstance(options, dict):
        raise InvalidDocument(f"`options` must be an object, got {options!r}")
    return document["text"], options
