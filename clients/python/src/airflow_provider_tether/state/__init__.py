"""Task state in tether: Airflow's state-store backend, and scopes for plain tasks."""

from airflow_provider_tether.state.task_state import ScopedState, TetherTaskState

__all__ = ["ScopedState", "TetherTaskState"]
