"""Google's own Dataproc client (google-cloud-dataproc, REST transport) driving tether's
Google simulator.

Run by providers/google/tests/vendor_clients.rs: argv is the simulator's URL and its service
account's key file. Submits, reads, lists and cancels a job and a Serverless batch, and sends
each request id and id again. Prints one JSON object of what it saw.
"""

import json
import sys
import time

from google.api_core import exceptions
from google.cloud import dataproc_v1
from google.oauth2 import service_account

url, key_file = sys.argv[1], sys.argv[2]
credentials = service_account.Credentials.from_service_account_file(
    key_file, scopes=["https://www.googleapis.com/auth/cloud-platform"]
)
options = {"api_endpoint": url}
P, R = "tether-sim", "us-central1"
seen = {}

jobs = dataproc_v1.JobControllerClient(
    credentials=credentials, transport="rest", client_options=options
)
job = {
    "placement": {"cluster_name": "tether-sim-cluster"},
    "pyspark_job": {"main_python_file_uri": "gs://tether-sim/job.py"},
    "reference": {"job_id": "vendor-job-1"},
    "labels": {"team": "data"},
}
def submit(job: dict, request_id: str) -> dataproc_v1.Job:
    return jobs.submit_job(
        request={"project_id": P, "region": R, "job": job, "request_id": request_id}
    )


made = submit(job, "vendor-request-1")
seen["submitted"] = [made.reference.job_id, made.status.state.name]
other = dict(job, reference={"job_id": "vendor-job-2"})
again = submit(other, "vendor-request-1")
seen["same_request"] = again.reference.job_id
try:
    submit(job, "vendor-request-2")
    seen["same_id"] = "made a second job"
except exceptions.Conflict:
    seen["same_id"] = "AlreadyExists"
got = jobs.get_job(project_id=P, region=R, job_id="vendor-job-1")
seen["got"] = [got.reference.job_id, got.status.state.name, got.done]
listed = jobs.list_jobs(
    request={"project_id": P, "region": R, "filter": "status.state = ACTIVE AND labels.team = data"}
)
seen["listed"] = sorted(j.reference.job_id for j in listed)
cancelled = jobs.cancel_job(project_id=P, region=R, job_id="vendor-job-1")
seen["cancel_answer"] = cancelled.status.state.name
deadline = time.time() + 10
while True:
    got = jobs.get_job(project_id=P, region=R, job_id="vendor-job-1")
    if got.done or time.time() > deadline:
        break
    time.sleep(0.2)
seen["after_cancel"] = [got.status.state.name, got.done]

batches = dataproc_v1.BatchControllerClient(
    credentials=credentials, transport="rest", client_options=options
)
parent = f"projects/{P}/locations/{R}"
batch = {"pyspark_batch": {"main_python_file_uri": "gs://tether-sim/batch.py"}}
def create(request_id: str):  # type: ignore[no-untyped-def]
    return batches.create_batch(
        request={
            "parent": parent,
            "batch": batch,
            "batch_id": "vendor-batch-1",
            "request_id": request_id,
        }
    )


operation = create("vendor-request-3")
seen["operation"] = operation.metadata.batch
name = f"{parent}/batches/vendor-batch-1"
got = batches.get_batch(name=name)
seen["batch"] = [got.name, got.state.name, bool(got.operation)]
try:
    create("vendor-request-4")
    seen["batch_same_id"] = "made a second batch"
except exceptions.Conflict:
    seen["batch_same_id"] = "AlreadyExists"
listed = batches.list_batches(request={"parent": parent, "filter": "state = RUNNING"})
seen["batches_listed"] = sorted(b.name.rsplit("/", 1)[-1] for b in listed)
batches.cancel_operation(request={"name": got.operation})
deadline = time.time() + 10
while True:
    got = batches.get_batch(name=name)
    if got.state.name in ("CANCELLED", "SUCCEEDED", "FAILED") or time.time() > deadline:
        break
    time.sleep(0.2)
seen["batch_after_cancel"] = got.state.name
print(json.dumps(seen))
