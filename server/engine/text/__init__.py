"""Text analysis: Qdrant's tokenizer options (``options.py``, ``tokenizer.py``) and the
``qdrant/bm25`` model that turns text into sparse vectors (``bm25.py``)."""
