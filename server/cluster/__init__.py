"""Cluster mode: one collection split into shards, each owning its own engine.

``shards.py`` is Ray-free: the ``ShardGroup`` transport interface, typed shard calls,
hash routing, result merging and ``ShardedCollection`` (the fan-out, one more
``engine.protocols.CollectionHandle``). ``ray_shards.py`` and ``ray_replicas.py`` are the
only modules that import Ray (the optional ``cluster`` extra), inside their functions.
Replicated shards (``replication_factor`` > 1, docs/adr/0014-replicated-shards.md):
``replicated.py`` (the group, healing, cluster operations), ``replica_set.py`` (one
shard's replicas), ``oplog.py``, ``replica_server.py`` (one replica),
``replica_transport.py`` (in-process) and ``ray_replicas.py`` (actors pinned to nodes).
``server/catalog.py`` picks the transport; nothing under ``server/engine`` or
``server/api`` imports either.
"""
