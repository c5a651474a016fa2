"""The ``quiver`` program (the console script): ``serve`` runs the server, ``import``,
``export``, ``snapshot``, ``collections`` and ``bench`` talk to a running one
(``client/commands.py``).

``quiver serve ...`` hands its arguments to ``server.cli.main``, imported only then: that
is the one place the client names the server, so the client commands start without
loading the server's modules or faiss, and ``server/`` never imports ``client/``.
"""

from __future__ import annotations

import argparse
import sys

from client.commands import add_client_commands, run


def main(argv: list[str] | None = None) -> None:
    arguments = sys.argv[1:] if argv is None else argv
    if arguments[:1] == ["serve"]:
        from server.cli import main as serve

        serve(arguments)
        return
    args = build_parser().parse_args(arguments)
    sys.exit(run(args))


def build_parser() -> argparse.ArgumentParser:
    """Every subcommand, so ``quiver --help`` lists them; ``serve``'s own flags are
    parsed (and its ``--help`` printed) by ``server/cli.py``."""
    parser = argparse.ArgumentParser(
        prog="quiver", description="Quiver vector search: the server and a client for it"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser(
        "serve", help="run the HTTP server (quiver serve --help for its flags)", add_help=False
    )
    add_client_commands(commands)
    return parser


if __name__ == "__main__":
    main()
