//! The edge catalog of the `kubernetes` kind (see [`tether_provider::edges`]), from the
//! Kubernetes documentation (kubernetes.io: API concepts, Object Names and IDs, Labels and
//! Selectors, Field Selectors, Jobs, TTL-after-finished controller, Garbage Collection,
//! Dynamic Admission Control, Resource Quotas, API Priority and Fairness), the API's own types
//! (`k8s.io/api` `batch/v1` and `admissionregistration/v1`, `k8s.io/apimachinery`
//! `pkg/apis/meta/v1` and `pkg/api/errors`), the API server's code where the documentation
//! gives no wording (`k8s.io/apiserver`: its storage, admission plugins, filters and
//! handlers; `kubernetes/kubernetes` `pkg/registry/batch/job`), and what the client tether
//! uses does (kube-rs 5: `kube-client`'s retry layer, `kube-runtime`'s watcher).

use std::time::Duration;

use tether_provider::edges::{Edge, Edges, Topic};

/// The catalog of the kind (there is one: any namespaced resource).
pub fn of(_kind: &str) -> &'static Edges {
    &KUBERNETES
}

/// Any namespaced resource made from a manifest.
pub static KUBERNETES: Edges = Edges {
    kind: "kubernetes",
    // Reads by name and lists without a resourceVersion are documented consistent, so a new
    // resource reads at once; 30 s is a margin for aggregated API servers, whose consistency
    // Kubernetes does not document.
    visible_after_create: Duration::from_secs(30),
    // A finished Job stays until deleted unless ttlSecondsAfterFinished says otherwise (the
    // account's delete_after bounds forgotten_after where it sets one).
    forgotten_after: None,
    entries: &[
        Edge {
            topic: Topic::Consistency,
            says: "a get or list without resourceVersion is \"Most Recent\": \"Return data at the most recent resource version. The returned data must be consistent (in detail: served from etcd via a quorum read)\"; since v1.31 (etcd v3.4.31+ or v3.5.13+) such reads are served from the watch cache with the same guarantee (consistent reads from cache, alpha and off by default in v1.28 to v1.30); a create answers the object as stored",
            tether: "every read by name (GET) and every sweep list sends no resourceVersion, so a resource just created reads at once; not_found_grace defaults to 30 s only as a margin for aggregated API servers, whose consistency Kubernetes does not document",
            source: "API concepts, semantics for get and list (https://kubernetes.io/docs/reference/using-api/api-concepts/#semantics-for-get-and-list); KEP-2340 Consistent Reads from Cache (https://www.kubernetes.dev/resources/keps/2340/)",
        },
        Edge {
            topic: Topic::Consistency,
            says: "resourceVersion=\"0\" is \"Any\", always served from the watch cache: \"It is possible for the request to return data at a much older resource version that the client has previously observed, particularly in high availability configurations, due to partitions or stale caches\"; a watch started so may \"return arbitrarily stale data\"; a resourceVersion the server does not know yet may be waited for and answered 504 (\"Too large resource version\")",
            tether: "tether never reads with resourceVersion=\"0\": the watch (kube-rs' watcher) lists Most Recent and only resumes its watches from a resourceVersion it was given; a watch change is a hint, so a stale or late one costs one poll",
            source: "API concepts, resource versions, semantics for watch, unavailable resource versions (https://kubernetes.io/docs/reference/using-api/api-concepts/#resource-versions); kube-runtime 5 watcher.rs (ListSemantic::MostRecent, the default)",
        },
        Edge {
            topic: Topic::Retention,
            says: "spec.ttlSecondsAfterFinished of a batch/v1 Job: \"If this field is unset, the Job won't be automatically deleted. If this field is set to zero, the Job becomes eligible to be deleted immediately after it finishes\"; the TTL-after-finished controller deletes it cascadingly (its Pods with it), honouring finalizers, and is \"sensitive to time skew\"; once the TTL has expired, extending it does not guarantee the Job is kept; no other controller deletes a finished Job that nothing owns (a CronJob's history limits delete the Jobs it made); custom resources have no TTL from Kubernetes",
            tether: "forgotten_after has no bound by default; the account's delete_after sets ttlSecondsAfterFinished on batch/v1 Jobs whose manifest has none and bounds forgotten_after (tether warns if poll_max is longer than half of it); with a kubernetes-watch event source tether hears a Job's end within seconds, so it records the end before the TTL deletes the Job",
            source: "k8s.io/api batch/v1/types.go JobSpec.ttlSecondsAfterFinished; TTL-after-finished controller (https://kubernetes.io/docs/concepts/workloads/controllers/ttlafterfinished/); Jobs, clean up finished jobs automatically (https://kubernetes.io/docs/concepts/workloads/controllers/job/#clean-up-finished-jobs-automatically)",
        },
        Edge {
            topic: Topic::Retention,
            says: "anyone allowed to may delete a resource at any time: a person, a CronJob's history limit, the TTL controller (a ttlSecondsAfterFinished of 0 deletes a Job as soon as it finishes), the deletion of its namespace; a read by name then answers 404 NotFound, \"jobs.batch \\\"NAME\\\" not found\"",
            tether: "a resource tether read once and then finds gone, or replaced (another uid under its name), is outcome_unknown, never resubmitted unless a person or the account (on_forgotten) says so; one deleted before tether's first read answers 404 and, after not_found_grace, is outcome_unknown too (the adapter's handle proves the resource was made: the create's answer was the stored object), never lost and created again; keep delete_after and any ttlSecondsAfterFinished well above poll_max so that tether reads the end",
            source: "Jobs, TTL mechanism for finished Jobs (https://kubernetes.io/docs/concepts/workloads/controllers/job/#ttl-mechanism-for-finished-jobs); k8s.io/apimachinery pkg/api/errors/errors.go NewNotFound",
        },
        Edge {
            topic: Topic::Idempotency,
            says: "objects have \"a unique object name to allow idempotent creation and retrieval\": \"Within a namespace, only one object of a given kind can have a given name at a time. However, if you delete the object, you can make a new object with the same name\"; a create of a taken name answers 409 Conflict with reason AlreadyExists, message \"jobs.batch \\\"NAME\\\" already exists\" and details name, group and kind (the kind field holds the resource, jobs); if the existing object is being deleted the message begins \"object is being deleted: \"",
            tether: "the name is derived from the key, one resource per key; a 409 AlreadyExists is read by name and adopted only if its tether.dev/key annotation names the key, otherwise the submit fails naming the resource and its uid; so a create repeated after a lost answer makes no second resource",
            source: "API concepts, object names (https://kubernetes.io/docs/reference/using-api/api-concepts/#object-names); k8s.io/apimachinery pkg/api/errors/errors.go NewAlreadyExists, pkg/apis/meta/v1/types.go StatusReasonAlreadyExists; k8s.io/apiserver pkg/registry/generic/registry/store.go (create)",
        },
        Edge {
            topic: Topic::Idempotency,
            says: "metadata.uid: \"UID is the unique in time and space value for this object\"; \"Every object created over the whole lifetime of a Kubernetes cluster has a distinct UID. It is intended to distinguish between historical occurrences of similar entities\": a resource deleted and created again under the same name has another uid",
            tether: "the handle keeps the uid and every read checks it: a resource of our name with another uid was re-created by someone and is never taken for ours (ours is gone); sweeps match by uid and the watch's hints name it",
            source: "k8s.io/apimachinery pkg/apis/meta/v1/types.go ObjectMeta.uid; Object Names and IDs, UIDs (https://kubernetes.io/docs/concepts/overview/working-with-objects/names/#uids)",
        },
        Edge {
            topic: Topic::Idempotency,
            says: "metadata.generateName: \"If this field is specified and the generated name exists, the server will return a 409\"; the API server appends 5 random characters and tries up to 8 names before it answers 409 AlreadyExists, \"jobs.batch \\\"NAME\\\" already exists, the server was not able to generate a unique name for the object\", with retryAfterSeconds 1; each create with generateName makes another object, so it cannot be repeated safely",
            tether: "tether never sends generateName: a manifest's generateName (or name) is only the readable prefix of the name tether derives from the key",
            source: "k8s.io/apimachinery pkg/apis/meta/v1/types.go ObjectMeta.generateName, pkg/api/errors/errors.go NewGenerateNameConflict; k8s.io/apiserver pkg/registry/generic/registry/store.go (createWithGenerateNameRetry, maxNameGenerationCreateAttempts = 8), pkg/storage/names/generate.go, pkg/registry/rest/create.go CheckGeneratedNameError",
        },
        Edge {
            topic: Topic::Names,
            says: "most resource types take a DNS-1123 subdomain name (\"contain no more than 253 characters\", lowercase letters, digits, '-' and '.', a letter or digit at both ends), some a DNS-1123 label (at most 63 characters, no '.'), and \"Some resource types have additional restrictions on their names\": a Job's, \"Even when the name is a DNS subdomain, the name must be no longer than 63 characters\" (its Pods carry it as the value of the batch.kubernetes.io/job-name label, and a label value is at most 63 characters); a namespace's name is a DNS-1123 label",
            tether: "the name is the manifest's name (else its generateName, else its kind) reduced to DNS-1123 label characters, a dash and 16 hex digits of the key's SHA-256, at most 63 characters in all: valid for every resource type, a Job's included; a new generation (a new key) gets a new name",
            source: "Object Names and IDs (https://kubernetes.io/docs/concepts/overview/working-with-objects/names/); Jobs, writing a Job spec and Job labels (https://kubernetes.io/docs/concepts/workloads/controllers/job/#writing-a-job-spec); k8s.io/apimachinery pkg/util/validation/validation.go (DNS1123LabelMaxLength 63, DNS1123SubdomainMaxLength 253)",
        },
        Edge {
            topic: Topic::Names,
            says: "a label key is an optional prefix (a DNS subdomain of at most 253 characters) and '/' and a name of at most 63 characters; a label value is at most 63 characters, empty or beginning and ending with a letter or digit, with '-', '_' and '.' between; annotations take any string, at most 256 KiB for all of an object's annotations together",
            tether: "the label tether.dev/managed-by: tether marks tether's resources, tether.dev/key-digest holds 16 hex digits of the key's SHA-256 (a key may be longer than a label value allows), and the annotation tether.dev/key holds the key in full",
            source: "Labels and Selectors, syntax and character set (https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#syntax-and-character-set); k8s.io/apimachinery pkg/util/validation/validation.go LabelValueMaxLength, pkg/api/validation/objectmeta.go TotalAnnotationSizeLimitB",
        },
        Edge {
            topic: Topic::Filters,
            says: "list and watch take a labelSelector, equality-based (=, ==, !=) and set-based (in, notin, exists); fieldSelector: \"Supported field selectors vary by Kubernetes resource type. All resource types support the metadata.name and metadata.namespace fields. Using unsupported field selectors produces an error\" (a Job also status.successful; a CustomResourceDefinition may declare up to 8 selectableFields), with =, == and != only",
            tether: "sweeps and watches select the label tether.dev/managed-by=tether, one list per namespace and resource type, and match resources by uid; no field selector is used",
            source: "Field Selectors (https://kubernetes.io/docs/concepts/overview/working-with-objects/field-selectors/); Labels and Selectors, label selectors (https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors); kubernetes/kubernetes pkg/registry/batch/job/strategy.go JobToSelectableFields; k8s.io/api apiextensions/v1 CustomResourceDefinitionVersion.selectableFields",
        },
        Edge {
            topic: Topic::Limits,
            says: "a list takes limit and continue; \"Setting a limit may return fewer than the requested amount of items (up to zero items) in the event all requested objects are filtered out and clients should only use the presence of the continue field to determine whether more results are available\", and \"Servers may choose not to support the limit argument\"; the pages are one consistent snapshot at the first page's resourceVersion",
            tether: "a sweep asks 500 items a page and follows continue while an answer carries one (an empty page with a token is not the end)",
            source: "k8s.io/apimachinery pkg/apis/meta/v1/types.go ListOptions.limit, ListMeta.continue; API concepts, retrieving large results sets in chunks (https://kubernetes.io/docs/reference/using-api/api-concepts/#retrieving-large-results-sets-in-chunks)",
        },
        Edge {
            topic: Topic::Limits,
            says: "\"Like a watch operation, a continue token will expire after a short amount of time (by default 5 minutes) and return a 410 Gone if more results cannot be returned. In this case, the client will need to start from the beginning or omit the limit parameter\" (ListOptions: \"generally five to fifteen minutes\"); the answer is 410 with reason Expired, \"The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - ...\", or without a new token \"The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.\"",
            tether: "no continue token outlives a sweep and the inconsistent continuation is never used: a 410 fails that sweep (tether does not take it for transient, so coalescing pauses for the account, 5 minutes) and its jobs are read singly by name meanwhile; the next sweep lists from the start",
            source: "API concepts, retrieving large results sets in chunks (https://kubernetes.io/docs/reference/using-api/api-concepts/#retrieving-large-results-sets-in-chunks); k8s.io/apimachinery pkg/apis/meta/v1/types.go ListOptions.continue; k8s.io/apiserver pkg/storage/etcd3/errors.go (continueExpired, inconsistentContinue)",
        },
        Edge {
            topic: Topic::Other,
            says: "\"Clusters using etcd 3 preserve changes in the last 5 minutes by default\"; a watch from a resourceVersion no longer kept fails with 410 Gone, and clients must list again and watch from the list's resourceVersion; once the watch has started the 410 comes as an ERROR event whose object is a Status (code 410, reason Expired), \"too old resource version: RV (OLDEST)\" from the watch cache (which aims to keep 75 s of events, DefaultEventFreshDuration), \"The resourceVersion for the provided watch is too old.\" from etcd",
            tether: "the watch (kube-rs' watcher) lists again after a 410 and watches from that list's resourceVersion; a change is only a hint: the job it names is polled (GET by name, uid checked) and only the poll is recorded, so a change missed while re-listing costs at most the job's poll interval",
            source: "API concepts, efficient detection of changes and \"410 Gone\" responses (https://kubernetes.io/docs/reference/using-api/api-concepts/#efficient-detection-of-changes); k8s.io/apiserver pkg/storage/cacher/watch_cache_history.go, cacher.go (newErrWatcher, DefaultEventFreshDuration), pkg/storage/etcd3/errors.go interpretWatchError; kube-runtime 5 watcher.rs",
        },
        Edge {
            topic: Topic::Other,
            says: "a watch ends after its timeoutSeconds (\"This limits the duration of the call, regardless of any activity or inactivity\") or, with none, after a random time between the API server's --min-request-timeout (1,800 s by default) and twice that; allowWatchBookmarks=true asks for BOOKMARK events, which carry only a resourceVersion, and clients \"shouldn't assume bookmarks are returned at any specific interval\" (the watch cache sends one about every minute and one before the watch's deadline); every change after the watch's resourceVersion is sent, and no coalescing of changes is documented",
            tether: "the watcher asks timeoutSeconds=290 and bookmarks, resumes from the last resourceVersion it saw (a bookmark's included) when a watch ends, takes a watch silent for 295 s for dead, and backs off between failures",
            source: "k8s.io/apimachinery pkg/apis/meta/v1/types.go ListOptions.timeoutSeconds, allowWatchBookmarks; API concepts, watch bookmarks (https://kubernetes.io/docs/reference/using-api/api-concepts/#watch-bookmarks); k8s.io/apiserver pkg/endpoints/handlers/get.go, pkg/server/options/server_run_options.go (--min-request-timeout), pkg/storage/cacher/cacher.go (defaultBookmarkFrequency); kube-runtime 5 watcher.rs (Config)",
        },
        Edge {
            topic: Topic::Other,
            says: "\"A namespace-scoped resource type will be deleted when its namespace is deleted\"; while the namespace is Terminating a create in it answers 403 Forbidden, \"jobs.batch \\\"NAME\\\" is forbidden: unable to create new content in namespace NS because it is being terminated\" (cause NamespaceTerminating); a create in a namespace that does not exist answers 404 NotFound, \"namespaces \\\"NS\\\" not found\"",
            tether: "a create refused so is a refused spec naming the namespace, not retried; a resource tether had seen and that went with its namespace is outcome_unknown",
            source: "API concepts, resource URIs (https://kubernetes.io/docs/reference/using-api/api-concepts/#resource-uris); Namespaces (https://kubernetes.io/docs/concepts/overview/working-with-objects/namespaces/); k8s.io/apiserver pkg/admission/plugin/namespace/lifecycle/admission.go",
        },
        Edge {
            topic: Topic::Other,
            says: "an admission webhook that denies a request fails it with its own status: \"When rejecting a request, the webhook can customize the http code and message returned to the user using the status field\"; the API server makes the message \"admission webhook \\\"NAME\\\" denied the request: MESSAGE\" (its reason if it gave no message, else \"admission webhook \\\"NAME\\\" denied the request without explanation\"); a code below 400, or none, becomes 400 Bad Request, and the reason stays what the webhook gave (none: empty); the object is not created",
            tether: "a denial answered 400, 403 (not about quota) or 422 is a refused spec carrying the webhook's message, not retried; one a webhook answers 429 or 5xx is retried like any other",
            source: "Dynamic Admission Control, response (https://kubernetes.io/docs/reference/access-authn-authz/extensible-admission-controllers/#response); k8s.io/apiserver pkg/admission/plugin/webhook/errors/statuserror.go ToStatusErr, pkg/admission/plugin/webhook/validating/dispatcher.go",
        },
        Edge {
            topic: Topic::MayHaveRun,
            says: "a webhook call that fails or outlasts its timeoutSeconds (1 to 30, \"Default to 10 seconds\") is ignored or fails the request by its failurePolicy (\"Defaults to Fail\"); failing closed answers 500, \"Internal error occurred: failed calling webhook \\\"NAME\\\": ...\", and a request whose own deadline passed in admission 504, \"Timeout: request did not complete within requested timeout\"; in both the object is not created, but the client cannot tell that from a 500 or 504 after storage",
            tether: "transient: the create is sent again under the same name, and its answer (201, or 409 AlreadyExists read and adopted by the key's annotation) settles whether the first was made",
            source: "k8s.io/api admissionregistration/v1/types.go ValidatingWebhook.failurePolicy, timeoutSeconds; k8s.io/apiserver pkg/admission/plugin/webhook/validating/dispatcher.go, pkg/util/webhook/error.go",
        },
        Edge {
            topic: Topic::Other,
            says: "\"If creating or updating a resource violates a quota constraint, the request will fail with HTTP status code 403 FORBIDDEN with a message explaining the constraint that would have been violated\": \"jobs.batch \\\"NAME\\\" is forbidden: exceeded quota: QUOTA, requested: ..., used: ..., limited: ...\", refused until usage drops; a Job's create is checked against object counts (count/jobs.batch), its Pods' cpu and memory only when the controller creates them (\"If the Job controller failed to create Pods for any reason (lack of ResourceQuota, lack of permission, etc.), then there may be fewer pods than requested\")",
            tether: "a 403 whose message says \"exceeded quota\" is transient, retried with backoff, since quota frees up as other jobs end; every other 403 is a refused spec; a Job whose Pods a quota holds back is created and reads pending or running until they start (its activeDeadlineSeconds, if any, bounds that)",
            source: "Resource Quotas (https://kubernetes.io/docs/concepts/policy/resource-quotas/); k8s.io/apiserver pkg/admission/plugin/resourcequota/controller.go; Jobs, controlling parallelism (https://kubernetes.io/docs/concepts/workloads/controllers/job/#controlling-parallelism)",
        },
        Edge {
            topic: Topic::Throttling,
            says: "API Priority and Fairness rejects what a priority level cannot take \"with an HTTP 429 (Too Many Requests) error\"; the kube-apiserver answers it with a Retry-After header and a plain-text body, \"Too many requests, please try again later.\", not a Status; a Status of reason TooManyRequests (429) carries details.retryAfterSeconds, which the server also sends as Retry-After; the documentation names no client-side limit",
            tether: "kube-rs retries 429, 503 and 504 itself (up to 15 times, backing off from 5 ms to 1,000 s, waiting a Retry-After's seconds where longer) before tether sees the error; tether then takes 429 as transient, pausing the account's rate limiter for a Status's retryAfterSeconds where one is given, else backing off; the account's rate limit (rate_per_second, rate_burst) is the only client-side limit, kube-rs having none",
            source: "API Priority and Fairness (https://kubernetes.io/docs/concepts/cluster-administration/flow-control/); k8s.io/apiserver pkg/server/filters/priority-and-fairness.go (tooManyRequests); k8s.io/apimachinery pkg/api/errors/errors.go NewTooManyRequests, pkg/apis/meta/v1/types.go StatusReasonTooManyRequests; kube-client 5 src/client/retry.rs (RetryPolicy::server_retry)",
        },
        Edge {
            topic: Topic::MayHaveRun,
            says: "504 with reason Timeout: \"Clients may retry, but the operation may still complete\" (\"Timeout: request did not complete within the allotted timeout\", the API server's --request-timeout, 60 s by default; \"Timeout: request did not complete within requested timeout - ...\"); 500 with reason ServerTimeout, \"The create operation against jobs.batch could not be completed at this time, please try again.\", and a cut connection say nothing of whether the object was stored",
            tether: "the name is the key's, so a create sent again (by kube-rs on a 504, by tether after a 5xx or a lost answer) makes the resource or answers 409 AlreadyExists, which is read and adopted only if its annotation names the key; tether's find reads the key's name (GET) and adopts under the same rule",
            source: "k8s.io/apimachinery pkg/api/errors/errors.go NewTimeoutError, NewServerTimeout, pkg/apis/meta/v1/types.go StatusReasonTimeout, StatusReasonServerTimeout; k8s.io/apiserver pkg/server/filters/timeout.go, pkg/endpoints/handlers/finisher/finisher.go, pkg/server/config.go (RequestTimeout)",
        },
        Edge {
            topic: Topic::Other,
            says: "an update (PUT) carries the resourceVersion it read: \"In the event that the resource has changed (the resourceVersion the client provided is stale), the API server returns a 409 Conflict error response\", reason Conflict, \"Operation cannot be fulfilled on RESOURCE \\\"NAME\\\": ...\"",
            tether: "tether never updates a resource it made (it creates, gets, lists, watches and deletes); a 409 Conflict answered to anything else is transient",
            source: "API concepts, updates to existing resources (https://kubernetes.io/docs/reference/using-api/api-concepts/#patch-and-apply); k8s.io/apimachinery pkg/api/errors/errors.go NewConflict",
        },
        Edge {
            topic: Topic::Other,
            says: "DeleteOptions.preconditions: \"Must be fulfilled before a deletion is carried out. If not possible, a 409 Conflict status will be returned\"; with another uid under the name the answer is 409 Conflict, \"Operation cannot be fulfilled on Job.batch \\\"NAME\\\": the UID in the precondition (UID) does not match the UID in record (UID). The object might have been deleted and then recreated\", or, if the object is replaced between that check and the delete, a message ending \"Precondition failed: UID in precondition: UID, UID in object meta: UID\"; with no object of the name, 404 NotFound",
            tether: "a cancel deletes with preconditions.uid set to the handle's uid, so it never deletes a resource that replaced ours; a 409 on that precondition, or a 404, means ours is gone already",
            source: "k8s.io/apimachinery pkg/apis/meta/v1/types.go DeleteOptions.preconditions, Preconditions; k8s.io/apiserver pkg/registry/rest/delete.go BeforeDelete, pkg/storage/interfaces.go Preconditions.Check, pkg/storage/errors/storage.go InterpretDeleteError",
        },
        Edge {
            topic: Topic::Other,
            says: "DeleteOptions.propagationPolicy: \"'Orphan' - orphan the dependents; 'Background' - allow the garbage collector to delete the dependents in the background; 'Foreground' - a cascading policy that deletes all dependents in the foreground\", and \"The default policy is decided by the existing finalizer set in the metadata.finalizers and the resource-specific default policy\": a batch/v1 Job's is to orphan (\"OrphanDependents for batch/v1 for backwards compatibility\"; Jobs created directly \"have a default deletion policy of orphanDependents causing Pods created by an unmanaged Job to be left around after that Job is fully deleted\"), so a DELETE without a policy leaves the Job's Pods running (kubectl sends background unless told otherwise); under Foreground the Job keeps a deletionTimestamp and the foregroundDeletion finalizer and \"remains visible through the Kubernetes API until the deletion process is complete\"",
            tether: "a cancel always sends propagationPolicy: Background unless the account's propagation_policy says Foreground or Orphan (Orphan leaves the Pods running after the Job is gone, and tether reads the job cancelled all the same); under Foreground the Job reads as before until it is gone, and a job gone after its cancel is cancelled",
            source: "k8s.io/apimachinery pkg/apis/meta/v1/types.go DeleteOptions.propagationPolicy; kubernetes/kubernetes pkg/registry/batch/job/strategy.go DefaultGarbageCollectionPolicy; Jobs, TTL mechanism for finished Jobs (note); Garbage Collection, cascading deletion (https://kubernetes.io/docs/concepts/architecture/garbage-collection/#cascading-deletion)",
        },
        Edge {
            topic: Topic::Other,
            says: "a Job's terminal conditions are Complete and Failed (\"A job is considered finished when it is in a terminal condition\"); since v1.31 the controller first adds SuccessCriteriaMet or FailureTarget \"to trigger Pod termination\" and \"only adds the Job terminal conditions after all of the Pods are terminated\" (terminationGracePeriodSeconds may lengthen the gap; until v1.30 Complete or Failed could come while Pods still ran); status.terminating counts the Pods \"in phase Pending or Running and have a deletionTimestamp\"",
            tether: "a Job has succeeded at Complete=True and failed at Failed=True (that condition's message is the job's); SuccessCriteriaMet and FailureTarget are only its raw state, so tether ends a job once its Pods are gone and a retry never runs beside them",
            source: "Jobs, terminal Job conditions and termination of Job pods (https://kubernetes.io/docs/concepts/workloads/controllers/job/#terminal-job-conditions); k8s.io/api batch/v1/types.go JobStatus.conditions, JobStatus.terminating, JobConditionType",
        },
        Edge {
            topic: Topic::Other,
            says: "\"Creating a Job with .spec.suspend set to true will create it in the suspended state\": condition Suspended=True, no running Pods, the activeDeadlineSeconds timer reset when it is resumed; spec.managedBy other than kubernetes.io/job-controller makes the built-in controller skip the Job (it \"skips reconciling Jobs with a custom value for this field\"), its status then being that controller's to write",
            tether: "a suspended Job is not an end: its raw state reads Suspended and the job stays active until Complete or Failed; tether never suspends or resumes a Job; a Job managed by another controller is judged by the same conditions, as that controller writes them",
            source: "Jobs, suspending a Job (https://kubernetes.io/docs/concepts/workloads/controllers/job/#suspending-a-job); k8s.io/api batch/v1/types.go JobSpec.suspend, JobSpec.managedBy, JobConditionType Suspended",
        },
    ],
};
