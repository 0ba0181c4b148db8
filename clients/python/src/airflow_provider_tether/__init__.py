"""Apache Airflow provider for tether.

- ``client.py``: ``TetherClient``, every HTTP call to tether's API (no Airflow import: usable
  from scripts and other schedulers).
- ``waiter.py``: the triggerer's shared long-poll for many jobs (no Airflow import either).
- ``hooks/tether.py``: ``TetherHook``, the Airflow connection of type ``tether``; ``get_conn()``
  gives the client.
- ``operators/job.py``: ``TetherJobOperator``, a remote job that survives evictions and retries.
- ``triggers/job.py``: ``TetherJobTrigger``, the deferrable wait.
- ``state/``: ``TetherStoreBackend`` (``[state_store] backend``), ``TetherTaskState`` (scopes:
  watermarks) and ``TetherCheckpoint`` (which items of a task's work are done).
- ``kill.py``: telling a person's stop from a disruption, before anything is cancelled.
- ``links.py``: the provider's run page as an operator extra link.
- ``_compat.py``: the one place that reaches into Airflow's non-public modules.
"""

__version__ = "0.1.0"
