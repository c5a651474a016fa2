"""``python -m client COMMAND ...`` is the ``quiver`` program (``client/cli.py``)."""

from client.cli import main

main()
