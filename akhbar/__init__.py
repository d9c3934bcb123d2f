"""What the whole system shares, below both ``service/`` and ``eval/``: the one typed
settings object (``settings.py``) and the composition of the pipeline (``pipeline.py``:
ingest, the backend registry, index builds). It imports ``corpus`` and ``index`` only."""
