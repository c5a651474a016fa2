"""The client side of the ``quiver`` command: everything but ``quiver serve``.

``http`` talks to a running server (Qdrant's envelope), ``readers`` turns vector files
into record batches, ``importer`` streams them to ``POST /collections/{name}/points/bulk``
with a resumable state file, ``exporter`` scrolls a collection into files, and
``commands`` wires them into argparse. Nothing here imports the server's engine, so the
client commands start without loading faiss.
"""
