"""The web dashboard (issue 22): static assets served at ``/dashboard`` and the two
data routes the REST API lacked (a 2-D map of a vector sample, jobs across collections).
Everything else the browser reads through the Qdrant-compatible REST API."""
