"""What Airflow's ProvidersManager reads through the ``apache_airflow_provider`` entry point."""

from __future__ import annotations

from typing import Any

from airflow_provider_tether import __version__


def get_provider_info() -> dict[str, Any]:
    return {
        "package-name": "airflow-provider-tether",
        "name": "tether",
        "description": (
            "Resumable remote jobs, a task state store backend, watermarks and checkpoints, "
            "through tether."
        ),
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": "tether",
                "tags": ["service"],
            }
        ],
        "connection-types": [
            {
                "hook-class-name": "airflow_provider_tether.hooks.tether.TetherHook",
                "connection-type": "tether",
            }
        ],
        "extra-links": ["airflow_provider_tether.links.TetherRunPageLink"],
        "hooks": [
            {
                "integration-name": "tether",
                "python-modules": ["airflow_provider_tether.hooks.tether"],
            }
        ],
        "operators": [
            {
                "integration-name": "tether",
                "python-modules": ["airflow_provider_tether.operators.job"],
            }
        ],
        "triggers": [
            {
                "integration-name": "tether",
                "python-modules": ["airflow_provider_tether.triggers.job"],
            }
        ],
        "config": {
            "tether": {
                "description": (
                    "Where TetherStoreBackend (the [state_store] backend) finds tether. "
                    "Operators and triggers use an Airflow connection of type tether instead."
                ),
                "options": {
                    "url": {
                        "description": "tether's base URL; TETHER_URL when unset.",
                        "version_added": "0.1.0",
                        "type": "string",
                        "example": "http://127.0.0.1:8470",
                        "default": None,
                    },
                    "token": {
                        "description": "The API token (an admin token); TETHER_TOKEN when unset.",
                        "version_added": "0.1.0",
                        "type": "string",
                        "sensitive": True,
                        "example": None,
                        "default": None,
                    },
                    "rerun_after_clear": {
                        "description": (
                            "TetherStoreBackend hides a task instance's key written before an "
                            "earlier try of it succeeded, so that a cleared task (a "
                            "ResumableJobMixin operator, say) runs its job anew instead of "
                            "reading the finished run's id."
                        ),
                        "version_added": "0.1.0",
                        "type": "boolean",
                        "example": "False",
                        "default": "True",
                    },
                },
            }
        },
    }
