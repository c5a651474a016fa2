"""What several test modules share, so no test module imports another.

* ``api``        the in-process app: ``Api``, ``make_client``, ``wait_green``, upserts, searches
* ``indexing``   the 16-d collection the indexing tests (and their sharded replay) build
* ``data``       seeded data generators and ``recall``
* ``strategies`` Hypothesis strategies: point ids, vectors, payloads, filters
* ``process``    a real server process (``QuiverProcess``) for black-box tests
* ``sharded``    the point set and filters both sharded-equivalence suites compare
* ``deploy``     the deploy files and the compose binary

``conftest.py`` files hold fixtures only; they build on these modules.
"""
