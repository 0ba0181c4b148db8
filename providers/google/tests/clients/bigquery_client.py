"""Google's own BigQuery client (google-cloud-bigquery) driving tether's BigQuery simulator.

Run by providers/google/tests/vendor_clients.rs: argv is the simulator's URL and its service
account's key file. The client signs in as Google's libraries do (google-auth's service
account credentials: the JWT-bearer exchange at the key's token_uri, the simulator's /token),
then inserts, reads, lists and cancels a job, and inserts its id again. Prints one JSON object
of what it saw; any error the simulator should not have given fails the run.
"""

import datetime
import json
import sys
import time

from google.api_core import exceptions
from google.cloud import bigquery
from google.oauth2 import service_account

url, key_file = sys.argv[1], sys.argv[2]
credentials = service_account.Credentials.from_service_account_file(
    key_file, scopes=["https://www.googleapis.com/auth/cloud-platform"]
)
client = bigquery.Client(
    project="tether-sim", credentials=credentials, client_options={"api_endpoint": url}
)
seen = {}

job = client.query("SELECT 1", job_id="vendor-query-1", location="US", job_retry=None)
seen["inserted"] = [job.job_id, job.location, job.state]

got = client.get_job("vendor-query-1", location="US")
seen["got"] = [type(got).__name__, got.job_id, got.state, got.created is not None]

listed = client.list_jobs(
    state_filter="running",
    min_creation_time=datetime.datetime(2020, 1, 1, tzinfo=datetime.timezone.utc),
    max_results=10,
)
seen["listed"] = sorted(j.job_id for j in listed)

cancelled = client.cancel_job("vendor-query-1", location="US")
seen["cancel_answer"] = cancelled.state
deadline = time.time() + 10
while True:
    job = client.get_job("vendor-query-1", location="US")
    if job.state == "DONE" or time.time() > deadline:
        break
    time.sleep(0.2)
seen["after_cancel"] = [job.state, (job.error_result or {}).get("reason")]

try:
    client.query("SELECT 1", job_id="vendor-query-1", location="US", job_retry=None)
    seen["again"] = "made a second job"
except exceptions.Conflict as e:
    seen["again"] = ["Conflict", e.errors[0]["reason"] if e.errors else None]

try:
    client.get_job("vendor-query-1", location="asia-east1")
    seen["elsewhere"] = "found"
except exceptions.NotFound:
    seen["elsewhere"] = "NotFound"

load = client.create_job(
    {"copy": {"sourceTable": {"projectId": "tether-sim", "datasetId": "d", "tableId": "a"},
              "destinationTable": {"projectId": "tether-sim", "datasetId": "d", "tableId": "b"}},
     "labels": {"team": "data"}}
)
seen["copy"] = [type(load).__name__, load.state]
print(json.dumps(seen))
