"""The official Kubernetes Python client (`kubernetes` on PyPI) against tether's Kubernetes
simulator: create, list, watch and delete a Job, and a custom resource of a CRD it creates.

Usage: k8s_client.py KUBECONFIG. Prints one JSON object of what it saw.
"""

import json
import sys

from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException


def main() -> None:
    config.load_kube_config(config_file=sys.argv[1])
    batch = client.BatchV1Api()
    seen: dict = {}
    job = client.V1Job(
        metadata=client.V1ObjectMeta(name="py-job", labels={"app": "py"}),
        spec=client.V1JobSpec(
            template=client.V1PodTemplateSpec(
                spec=client.V1PodSpec(
                    restart_policy="Never",
                    containers=[client.V1Container(name="main", image="busybox")],
                )
            )
        ),
    )
    made = batch.create_namespaced_job("default", job)
    seen["uid"] = made.metadata.uid
    seen["backoff_limit"] = made.spec.backoff_limit
    try:
        batch.create_namespaced_job("default", job)
    except ApiException as e:
        seen["again"] = [e.status, json.loads(e.body)["reason"]]
    listed = batch.list_namespaced_job("default", label_selector="app=py", limit=1)
    seen["listed"] = [j.metadata.name for j in listed.items]
    w = watch.Watch()
    conditions = []
    for event in w.stream(
        batch.list_namespaced_job,
        "default",
        label_selector="app=py",
        timeout_seconds=20,
        allow_watch_bookmarks=True,
    ):
        if event["type"] == "BOOKMARK":
            # Its object is left a dict: only its resourceVersion counts.
            seen["bookmarks"] = seen.get("bookmarks", 0) + 1
            continue
        j = event["object"]
        types = [c.type for c in (j.status.conditions or [])]
        conditions.append(types)
        if "Complete" in types:
            w.stop()
    seen["conditions"] = conditions[-1] if conditions else []
    try:
        batch.delete_namespaced_job(
            "py-job",
            "default",
            body=client.V1DeleteOptions(
                propagation_policy="Background",
                preconditions=client.V1Preconditions(uid="not-its-uid"),
            ),
        )
    except ApiException as e:
        seen["wrong_uid"] = [e.status, json.loads(e.body)["reason"]]
    status = batch.delete_namespaced_job(
        "py-job",
        "default",
        body=client.V1DeleteOptions(
            propagation_policy="Background",
            preconditions=client.V1Preconditions(uid=made.metadata.uid),
        ),
    )
    # The client leaves the answer a dict (a Status here; the object, for other deletes).
    seen["deleted"] = status["status"] if isinstance(status, dict) else status.status
    try:
        batch.read_namespaced_job("py-job", "default")
    except ApiException as e:
        seen["after"] = e.status

    ext = client.ApiextensionsV1Api()
    ext.create_custom_resource_definition(
        client.V1CustomResourceDefinition(
            metadata=client.V1ObjectMeta(name="trains.example.com"),
            spec=client.V1CustomResourceDefinitionSpec(
                group="example.com",
                scope="Namespaced",
                names=client.V1CustomResourceDefinitionNames(
                    plural="trains", singular="train", kind="Train", list_kind="TrainList"
                ),
                versions=[
                    client.V1CustomResourceDefinitionVersion(
                        name="v1",
                        served=True,
                        storage=True,
                        schema=client.V1CustomResourceValidation(
                            open_apiv3_schema=client.V1JSONSchemaProps(
                                type="object", x_kubernetes_preserve_unknown_fields=True
                            )
                        ),
                    )
                ],
            ),
        )
    )
    custom = client.CustomObjectsApi()
    train = {"apiVersion": "example.com/v1", "kind": "Train", "metadata": {"name": "bert", "labels": {"app": "py"}}, "spec": {"epochs": 3}}
    custom.create_namespaced_custom_object("example.com", "v1", "default", "trains", train)
    custom.patch_namespaced_custom_object_status(
        "example.com", "v1", "default", "trains", "bert", {"status": {"phase": "Done"}}
    )
    got = custom.get_namespaced_custom_object("example.com", "v1", "default", "trains", "bert")
    seen["train"] = [got["status"]["phase"], got["metadata"]["generation"]]
    trains = custom.list_namespaced_custom_object("example.com", "v1", "default", "trains", label_selector="app=py")
    seen["trains"] = [t["metadata"]["name"] for t in trains["items"]]
    custom.delete_namespaced_custom_object("example.com", "v1", "default", "trains", "bert")
    print(json.dumps(seen))


if __name__ == "__main__":
    main()
