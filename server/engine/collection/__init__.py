"""One single-node collection, split by verb around its segment holder (Qdrant's
``collection`` beside ``segments_searcher`` / ``segments_updater`` / ``segments_retriever``):

* ``facade.py``   ``Collection``: owns the lock, the segments and the lifecycle; delegates
* ``writes.py``   upsert, delete, payload rewrites: commit to the store, apply to segments
* ``search.py``   batch grouping, filter masks, paging, hits
* ``records.py``  retrieve, scroll, records and their vectors
* ``recovery.py`` rebuild the segments from disk on open
* ``stats.py``    info, segments, index memory
"""

from server.engine.collection.facade import Collection
from server.engine.requests import PointsSelection, SearchSpec, VectorSelector

__all__ = ["Collection", "PointsSelection", "SearchSpec", "VectorSelector"]
