"""Multi-process serving (``QUIVER_WORKERS`` > 1, ADR 0013).

One supervisor process binds the sockets, forks the workers and then becomes a small
keeper process (``exec``) that restarts them: worker 0, the owner,
runs the full server (engine, build worker, gRPC, every write); workers 1..N-1 are
readers that answer point reads from their own read-only view of the data folder and
forward everything else to the owner over a Unix socket. The owner bumps a shared
generation counter before it answers any write; a reader whose view is older than
the counter forwards the read and reloads its view in the background.

    supervisor.py   sockets, the app built once, fork, then exec of the keeper
    keeper.py       waits for the workers: restart of crashed ones, SIGTERM
    spawn.py        a restarted worker (exec'd by the keeper)
    generation.py   the shared counter (a memfd mapped shared, inherited by fork and exec)
    routing.py      which requests a reader may answer itself
    owner.py        the owner's gate: bump the counter before a write's answer
    reader.py       the reader's gate: local read, or forward; background reload
    view.py         a reader's read-only view of every plain collection
    proxy.py        forwarding one HTTP request to the owner's Unix socket
"""
