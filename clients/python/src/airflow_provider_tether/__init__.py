"""Apache Airflow provider for tether.

- ``hooks/tether.py``: ``TetherHook`` and ``TetherClient``, all HTTP to tether's API.
- ``operators/job.py``: ``TetherJobOperator``, a remote job that survives evictions and retries.
- ``triggers/job.py``: ``TetherJobTrigger``, the deferrable wait (one long-poll at a time).
- ``state/``: ``TetherStoreBackend`` (``[state_store] backend``) and ``TetherTaskState``.
- ``kill.py``: telling a person's stop from a disruption before anything is cancelled.
- ``links.py``: the provider's run page as an operator extra link.
"""

__version__ = "0.1.0"
