"""Cluster mode: one collection split into shards, each owning its own engine.

``shards.py`` is Ray-free: the ``ShardGroup`` transport interface, typed shard calls,
hash routing, result merging and ``ShardedCollection`` (the fan-out, one more
``engine.protocols.CollectionHandle``). ``ray_shards.py`` is the only module that
imports Ray (the optional ``cluster`` extra), inside its functions. ``server/catalog.py``
picks the transport; nothing under ``server/engine`` or ``server/api`` imports either.
"""
