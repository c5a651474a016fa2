"""Cluster mode: one collection split into shards, each owning its own engine.

``shards.py`` is Ray-free: the ``ShardGroup`` transport interface, hash routing,
result merging and ``ShardedCollection`` (the fan-out). ``ray_shards.py`` is the
only module that imports Ray (the optional ``cluster`` extra); nothing under
``server/engine`` or ``server/api`` imports either at module level.
"""
