"""The ``quiver`` program and its client commands: everything but ``quiver serve``.

``http`` talks to a running server (Qdrant's envelope), ``readers`` turns vector files
into record batches, ``importer`` streams them to ``POST /collections/{name}/points/bulk``
with a resumable state file, ``exporter`` scrolls a collection into files, and
``commands`` wires them into argparse, and ``cli`` is the console script. Nothing here
imports the server (``cli`` hands ``quiver serve`` to ``server/cli.py`` only when it runs),
so the client commands start without loading faiss.
"""
