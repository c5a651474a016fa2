"""Which requests a reader answers itself: the point reads of one collection.

Everything else (writes, collection and cluster management, jobs, metrics, snapshots,
the dashboard, health) goes to the owner, which holds the engine, the build worker
and the job records. The route table (``api/access.py``) says which routes only read.
"""

from __future__ import annotations

from server.api.access import Need, match_route

_LOCAL_PREFIXES = ("/collections/{name}/points", "/collections/{name}/facet")
READ_METHODS = frozenset({"GET", "HEAD"})


def local_read(method: str, path: str) -> str | None:
    """The collection name a point read names, or None when the owner must answer."""
    match = match_route(method, path)
    if match is None or match.rule.need is not Need.READ:
        return None
    if not match.template.startswith(_LOCAL_PREFIXES):
        return None
    return match.path_params.get("name")


def is_write(method: str, path: str) -> bool:
    """A request that may change something: any route the table does not mark as
    read-only (unknown paths included, so a new write route can never be missed)."""
    if method in READ_METHODS:
        return False
    match = match_route(method, path)
    return match is None or match.rule.need not in _READ_NEEDS


_READ_NEEDS = frozenset({Need.READ, Need.GLOBAL_READ, Need.OPEN, Need.ANY})
