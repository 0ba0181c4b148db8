"""Task state in tether: Airflow's state-store backend, scopes for plain tasks, and
checkpoints."""

from airflow_provider_tether.state.checkpoint import TetherCheckpoint
from airflow_provider_tether.state.task_state import ScopedState, TetherTaskState

__all__ = ["ScopedState", "TetherCheckpoint", "TetherTaskState"]
