"""The operator extra link: the provider's run page of the job a task ran."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperatorLink

from airflow_provider_tether._compat import xcom_value

if TYPE_CHECKING:
    from airflow.sdk.types import TaskInstanceKey

#: The XCom key under which the operator pushes the provider's run page URL.
XCOM_RUN_PAGE_URL_KEY = "tether_run_page_url"


class TetherRunPageLink(BaseOperatorLink):
    """The job in the provider's UI (Databricks run page, ...), as tether reported it."""

    name = "Remote run page"

    def get_link(self, operator: Any, *, ti_key: TaskInstanceKey) -> str:
        url = xcom_value(XCOM_RUN_PAGE_URL_KEY, ti_key)
        return str(url) if url else ""
