//! The simulated API's requests, for every resource type alike: the path read
//! (`/api/v1/...`, `/apis/GROUP/VERSION/...`, namespaced or not), then create, get, list,
//! watch, patch or delete, each answering as the API server does, errors as `Status` bodies.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::controller::{Outcome, Scripted};
use super::discovery::{ResourceType, Types};
use super::store::{Change, Key, Object, Selector};
use super::{gate, respond_after, status_error, Endpoint, Inner, Shared};

/// A new `metadata.uid` (a random UUID, version 4).
pub fn new_uid() -> String {
    let n: u128 = rand::random::<u128>() & !(0xf << 76) | (0x4 << 76);
    let n = n & !(0x3 << 62) | (0x2 << 62);
    let h = format!("{n:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

/// What a request's path names.
struct Target {
    ty: ResourceType,
    version: String,
    namespace: Option<String>,
    name: Option<String>,
    subresource: Option<String>,
}

impl Target {
    fn key(&self, name: &str) -> Key {
        (
            self.ty.group.clone(),
            self.ty.plural.clone(),
            self.namespace.clone().unwrap_or_default(),
            name.to_string(),
        )
    }

    fn api_version(&self) -> String {
        self.ty.group_version(&self.version)
    }

    /// `"jobs.batch \"name\""`, as messages name an object.
    fn named(&self, name: &str) -> String {
        format!("{} \"{name}\"", self.ty.qualified())
    }

    fn details(&self, name: &str) -> Value {
        json!({"name": name, "group": self.ty.group, "kind": self.ty.plural})
    }

    fn not_found(&self, name: &str) -> Response {
        status_error(
            404,
            "NotFound",
            format!("{} not found", self.named(name)),
            Some(self.details(name)),
        )
    }
}

/// Every request under `/api` and `/apis`.
pub async fn dispatch(
    State(inner): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().trim_end_matches('/');
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    let query = params(&uri);
    let watching = matches!(param(&query, "watch"), Some("true" | "1"));
    let (group, version, rest) = match segments.as_slice() {
        ["api"] => return Json(Types::core_versions()).into_response(),
        ["apis"] => {
            return Json(
                inner
                    .lock()
                    .expect("simulator mutex poisoned")
                    .types
                    .groups(),
            )
            .into_response()
        }
        ["api", version, rest @ ..] => ("", *version, rest),
        ["apis", group, version, rest @ ..] => (*group, *version, rest),
        _ => {
            return status_error(
                404,
                "NotFound",
                "the server could not find the requested resource",
                None,
            )
        }
    };
    if rest.is_empty() {
        let found = inner
            .lock()
            .expect("simulator mutex poisoned")
            .types
            .resources(group, version);
        return match found {
            Some(list) => Json(list).into_response(),
            None => status_error(
                404,
                "NotFound",
                "the server could not find the requested resource",
                None,
            ),
        };
    }
    let found = target(
        &inner.lock().expect("simulator mutex poisoned").types,
        group,
        version,
        rest,
    );
    let named = found.as_ref().is_some_and(|t| t.name.is_some());
    let endpoint = match (&method, named) {
        (&Method::POST, _) => Endpoint::Create,
        (&Method::DELETE, _) => Endpoint::Delete,
        (&Method::GET, _) if watching => Endpoint::Watch,
        (&Method::GET, true) => Endpoint::Get,
        (&Method::GET, false) => Endpoint::List,
        _ => Endpoint::Other,
    };
    let after = match gate(&inner, &headers, endpoint).await {
        Ok(after) => after,
        Err(refused) => return refused,
    };
    let Some(target) = found else {
        return status_error(
            404,
            "NotFound",
            "the server could not find the requested resource",
            None,
        );
    };
    let response = match (&method, &target.name) {
        (&Method::POST, None) => create(&inner, &target, &body),
        (&Method::GET, None) if watching => watch(&inner, &target, &query),
        (&Method::GET, None) => list(&inner, &target, &query),
        (&Method::GET, Some(name)) => read(&inner, &target, name),
        (&Method::DELETE, Some(name)) => delete(&inner, &target, name, &body, &query),
        (&Method::PATCH | &Method::PUT, Some(name)) => patch(&inner, &target, name, &body, &method),
        _ => status_error(
            405,
            "MethodNotAllowed",
            format!("the server does not allow this method on the requested resource ({method})"),
            None,
        ),
    };
    respond_after(after, response)
}

/// The target of `rest` (the path after the group version), if it names a served type.
fn target(types: &Types, group: &str, version: &str, rest: &[&str]) -> Option<Target> {
    let (namespace, rest) = match rest {
        ["namespaces", ns, plural, more @ ..]
            if !(group.is_empty() && *plural == "status" && more.is_empty()) =>
        {
            (Some((*ns).to_string()), {
                let mut r = vec![*plural];
                r.extend_from_slice(more);
                r
            })
        }
        _ => (None, rest.to_vec()),
    };
    let (plural, name, subresource) = match rest.as_slice() {
        [plural] => (*plural, None, None),
        [plural, name] => (*plural, Some((*name).to_string()), None),
        [plural, name, sub] => (*plural, Some((*name).to_string()), Some((*sub).to_string())),
        _ => return None,
    };
    let ty = types.find(group, version, plural)?.clone();
    if ty.namespaced != namespace.is_some() && !(ty.namespaced && name.is_none()) {
        return None;
    }
    Some(Target {
        ty,
        version: version.to_string(),
        namespace,
        name,
        subresource,
    })
}

/// The query's parameters.
pub fn params(uri: &Uri) -> Vec<(String, String)> {
    url::form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes())
        .into_owned()
        .collect()
}

/// The first value of the parameter `name`.
pub fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn invalid(target: &Target, name: &str, causes: &[(String, String)]) -> Response {
    let message = causes
        .iter()
        .map(|(field, why)| format!("{field}: {why}"))
        .collect::<Vec<_>>()
        .join(", ");
    let kind = if target.ty.group.is_empty() {
        target.ty.kind.clone()
    } else {
        format!("{}.{}", target.ty.kind, target.ty.group)
    };
    let causes: Vec<Value> = causes
        .iter()
        .map(|(field, why)| json!({"reason": "FieldValueInvalid", "message": why, "field": field}))
        .collect();
    status_error(
        422,
        "Invalid",
        format!("{kind} \"{name}\" is invalid: {message}"),
        Some(
            json!({"name": name, "group": target.ty.group, "kind": target.ty.kind, "causes": causes}),
        ),
    )
}

/// Whether `name` is a DNS-1123 subdomain (most objects' names).
fn is_subdomain(name: &str) -> bool {
    name.len() <= 253
        && name.split('.').all(|l| {
            !l.is_empty()
                && l.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        })
}

/// What is wrong with an object's name, labels and (for a Job) spec, as the server's
/// validation says it.
fn validate(target: &Target, name: &str, object: &Value) -> Vec<(String, String)> {
    let mut causes = Vec::new();
    let label_like = target.ty.kind == "Namespace" || target.ty.kind == "Job";
    if !is_subdomain(name) || (label_like && !crate::name::is_dns_label(name)) {
        let why = if name.len() > 63 && label_like {
            "must be no more than 63 characters".to_string()
        } else {
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character".to_string()
        };
        causes.push((
            "metadata.name".into(),
            format!("Invalid value: {name:?}: {why}"),
        ));
    }
    if let Some(labels) = object["metadata"]["labels"].as_object() {
        for (k, v) in labels {
            let v = v.as_str().unwrap_or_default();
            let ok = v.len() <= 63
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
                && v.bytes().next().is_none_or(|b| b.is_ascii_alphanumeric())
                && v.bytes().last().is_none_or(|b| b.is_ascii_alphanumeric());
            if !ok {
                causes.push(("metadata.labels".to_string(), format!("Invalid value: {v:?}: a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (label {k}), and must be no more than 63 characters")));
            }
        }
    }
    if target.ty.group == "batch" && target.ty.kind == "Job" {
        let pod = &object["spec"]["template"]["spec"];
        if pod["containers"].as_array().is_none_or(Vec::is_empty) {
            causes.push((
                "spec.template.spec.containers".into(),
                "Required value".into(),
            ));
        }
        let restart = pod["restartPolicy"].as_str().unwrap_or("Always");
        if restart != "Never" && restart != "OnFailure" {
            causes.push((
                "spec.template.spec.restartPolicy".into(),
                format!(
                    "Unsupported value: {restart:?}: supported values: \"OnFailure\", \"Never\""
                ),
            ));
        }
    }
    causes
}

/// A create's body checked as the server checks it before it looks at what exists: the
/// object (its apiVersion and kind set) and its name.
fn received(target: &Target, body: &[u8]) -> Result<(Value, String), Refused> {
    let mut object: Value = match serde_json::from_slice(body) {
        Ok(v @ Value::Object(_)) => v,
        _ => return Err(Box::new(status_error(400, "BadRequest", "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml", None))),
    };
    let want = target.api_version();
    if object["apiVersion"].as_str().is_some_and(|v| v != want) {
        return Err(Box::new(status_error(
            400,
            "BadRequest",
            format!(
                "the API version in the data ({}) does not match the expected API version ({want})",
                object["apiVersion"].as_str().unwrap_or_default()
            ),
            None,
        )));
    }
    if object["kind"].as_str().is_some_and(|k| k != target.ty.kind) {
        return Err(Box::new(status_error(
            400,
            "BadRequest",
            format!(
                "the kind in the data ({}) does not match the expected kind ({})",
                object["kind"].as_str().unwrap_or_default(),
                target.ty.kind
            ),
            None,
        )));
    }
    object["apiVersion"] = json!(want);
    object["kind"] = json!(target.ty.kind);
    if let (Some(ns), Some(given)) = (&target.namespace, object["metadata"]["namespace"].as_str()) {
        if given != ns {
            return Err(Box::new(status_error(400, "BadRequest", "the namespace of the provided object does not match the namespace sent on the request", None)));
        }
    }
    let name = match (
        object["metadata"]["name"].as_str(),
        object["metadata"]["generateName"].as_str(),
    ) {
        (Some(n), _) if !n.is_empty() => n.to_string(),
        (_, Some(prefix)) if !prefix.is_empty() => format!("{prefix}{}", suffix()),
        _ => {
            return Err(Box::new(invalid(
                target,
                "",
                &[(
                    "metadata.name".into(),
                    "Required value: name or generateName is required".into(),
                )],
            )))
        }
    };
    let causes = validate(target, &name, &object);
    if !causes.is_empty() {
        return Err(Box::new(invalid(target, &name, &causes)));
    }
    Ok((object, name))
}

/// Why a create of `name` in the target's namespace is refused for the namespace's sake: it
/// does not exist, or it is being deleted.
fn namespace_refusal(guard: &Inner, target: &Target, name: &str) -> Option<Response> {
    if let Some(ns) = &target.namespace {
        let ns_key: Key = (
            String::new(),
            "namespaces".into(),
            String::new(),
            ns.clone(),
        );
        match guard.store.get(&ns_key) {
            None => {
                return Some(status_error(
                    404,
                    "NotFound",
                    format!("namespaces \"{ns}\" not found"),
                    Some(json!({"name": ns, "kind": "namespaces"})),
                ));
            }
            Some(n) if n.value["status"]["phase"] == "Terminating" => {
                return Some(status_error(403, "Forbidden", format!("{} is forbidden: unable to create new content in namespace {ns} because it is being terminated", target.named(name)),
                    Some(json!({"name": name, "group": target.ty.group, "kind": target.ty.plural,
                        "causes": [{"reason": "NamespaceTerminating", "message": format!("namespace {ns} is being terminated"), "field": "metadata.namespace"}]}))));
            }
            Some(_) => {}
        }
    }
    None
}

fn create(inner: &Shared, target: &Target, body: &[u8]) -> Response {
    let (mut object, name) = match received(target, body) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    let mut guard = inner.lock().expect("simulator mutex poisoned");
    let now = Instant::now();
    if let Some(refused) = namespace_refusal(&guard, target, &name) {
        return refused;
    }
    let key = target.key(&name);
    if guard.store.get(&key).is_some() {
        return status_error(
            409,
            "AlreadyExists",
            format!("{} already exists", target.named(&name)),
            Some(target.details(&name)),
        );
    }
    if target.ty.kind == "CustomResourceDefinition" {
        object["metadata"]["name"] = json!(name);
        match guard.types.register(&object) {
            Ok(_) => {
                object["status"] = json!({"conditions": [
                    {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts"},
                    {"type": "Established", "status": "True", "reason": "InitialNamesAccepted"}]});
            }
            Err(why) => {
                let (field, why) = why.split_once(": ").unwrap_or(("spec", &why));
                return invalid(target, &name, &[(field.to_string(), why.to_string())]);
            }
        }
    }
    let uid = new_uid();
    let meta = &mut object["metadata"];
    meta["name"] = json!(name);
    meta["uid"] = json!(uid);
    meta["generation"] = json!(1);
    meta["creationTimestamp"] = json!(super::controller::timestamp());
    if let Some(ns) = &target.namespace {
        meta["namespace"] = json!(ns);
    }
    if target.ty.kind == "Namespace" {
        object["status"] = json!({"phase": "Active"});
    }
    if target.ty.kind == "Job" {
        job_defaults(&mut object, &name, &uid);
    }
    let scripted = Scripted::of(&target.ty.group, &target.ty.kind);
    let ttl = object["spec"]["ttlSecondsAfterFinished"]
        .as_u64()
        .map(Duration::from_secs);
    let ttl = match (ttl, guard.harness.lifetimes.forget_after) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    let (outcome, pending, running) = (
        guard.config.outcome.clone(),
        guard.config.pending,
        guard.config.running,
    );
    let outcome = match object["metadata"]["annotations"]["sim.tether.dev/outcome"].as_str() {
        Some("succeed") => Outcome::Succeed,
        Some(reason) => Outcome::Fail(reason.to_string()),
        None => outcome,
    };
    guard.controller.admit(
        &uid,
        scripted,
        &mut object,
        outcome,
        pending,
        running,
        ttl,
        now,
    );
    let key_annotation = object["metadata"]["annotations"][crate::name::KEY]
        .as_str()
        .map(str::to_string);
    guard.harness.counters.job_made(key_annotation.as_deref());
    let stored = guard.store.put(
        key,
        Object {
            value: object,
            created: now,
            ended: None,
            hidden: false,
            seen: None,
        },
    );
    (StatusCode::CREATED, Json(stored)).into_response()
}

/// Five characters of `generateName`'s alphabet.
fn suffix() -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    (0..5)
        .map(|_| ALPHABET[rand::random_range(0..ALPHABET.len())] as char)
        .collect()
}

/// A Job's defaults, as the API server fills them in.
fn job_defaults(object: &mut Value, name: &str, uid: &str) {
    let spec = &mut object["spec"];
    for (field, value) in [
        ("backoffLimit", json!(6)),
        ("completions", json!(1)),
        ("parallelism", json!(1)),
        ("completionMode", json!("NonIndexed")),
        ("suspend", json!(false)),
        ("manualSelector", json!(false)),
    ] {
        if spec[field].is_null() {
            spec[field] = value;
        }
    }
    spec["selector"] = json!({"matchLabels": {"batch.kubernetes.io/controller-uid": uid}});
    let labels = &mut spec["template"]["metadata"]["labels"];
    labels["batch.kubernetes.io/controller-uid"] = json!(uid);
    labels["batch.kubernetes.io/job-name"] = json!(name);
    labels["controller-uid"] = json!(uid);
    labels["job-name"] = json!(name);
}

fn read(inner: &Shared, target: &Target, name: &str) -> Response {
    let mut guard = inner.lock().expect("simulator mutex poisoned");
    let now = Instant::now();
    let key = target.key(name);
    let value = match guard.store.get(&key) {
        Some(o) if guard.harness.lifetimes.readable(o.created, o.ended, now) => o.value.clone(),
        _ => return target.not_found(name),
    };
    guard.store.touch([&key], now);
    Json(value).into_response()
}

/// A field selector's requirements: (field, value, whether it must equal it).
type Fields = Vec<(String, String, bool)>;

/// An error answer, boxed (an `Err` as small as an `Ok`).
type Refused = Box<Response>;

/// The fields a field selector may name (every type's).
fn field_filter(query: &[(String, String)]) -> Result<Fields, Refused> {
    let Some(text) = param(query, "fieldSelector").filter(|t| !t.is_empty()) else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for part in text.split(',') {
        let (field, value, equal) = if let Some((f, v)) = part.split_once("!=") {
            (f, v, false)
        } else if let Some((f, v)) = part.split_once("==").or_else(|| part.split_once('=')) {
            (f, v, true)
        } else {
            return Err(Box::new(status_error(
                400,
                "BadRequest",
                format!("invalid selector: '{text}'; can't understand '{part}'"),
                None,
            )));
        };
        if field != "metadata.name" && field != "metadata.namespace" {
            return Err(Box::new(status_error(
                400,
                "BadRequest",
                format!("field label not supported: {field}"),
                None,
            )));
        }
        out.push((field.to_string(), value.to_string(), equal));
    }
    Ok(out)
}

fn fields_match(fields: &Fields, object: &Value) -> bool {
    fields.iter().all(|(field, value, equal)| {
        let got = match field.as_str() {
            "metadata.name" => object["metadata"]["name"].as_str(),
            _ => object["metadata"]["namespace"].as_str(),
        };
        (got == Some(value.as_str())) == *equal
    })
}

fn selectors(query: &[(String, String)]) -> Result<(Selector, Fields), Refused> {
    let labels = Selector::parse(param(query, "labelSelector").unwrap_or_default())
        .map_err(|e| Box::new(status_error(400, "BadRequest", e, None)))?;
    Ok((labels, field_filter(query)?))
}

/// A continue token: the list's version and the last key it returned.
fn continue_token(rv: u64, key: &Key) -> String {
    let text = json!({"rv": rv, "ns": key.2, "name": key.3}).to_string();
    text.bytes().map(|b| format!("{b:02x}")).collect()
}

fn read_token(token: &str) -> Option<(u64, String, String)> {
    let bytes: Option<Vec<u8>> = (0..token.len())
        .step_by(2)
        .map(|i| {
            token
                .get(i..i + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        })
        .collect();
    let v: Value = serde_json::from_slice(&bytes?).ok()?;
    Some((
        v["rv"].as_u64()?,
        v["ns"].as_str()?.to_string(),
        v["name"].as_str()?.to_string(),
    ))
}

fn list(inner: &Shared, target: &Target, query: &[(String, String)]) -> Response {
    let (labels, fields) = match selectors(query) {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let limit = param(query, "limit")
        .and_then(|l| l.parse::<usize>().ok())
        .filter(|l| *l > 0);
    let mut guard = inner.lock().expect("simulator mutex poisoned");
    let after = match param(query, "continue").filter(|c| !c.is_empty()) {
        None => None,
        Some(token) => match read_token(token) {
            None => return status_error(400, "BadRequest", "continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)", None),
            Some((rv, _, _)) if rv < guard.store.oldest() => {
                return status_error(410, "Expired", "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.", None);
            }
            Some((_, ns, name)) => Some((ns, name)),
        },
    };
    let now = Instant::now();
    let lifetimes = guard.harness.lifetimes;
    let lie = guard.config.lists_report_success;
    let builtin_type = matches!(
        target.ty.group.as_str(),
        "" | "batch" | "apiextensions.k8s.io"
    );
    let mut items = Vec::new();
    let mut listed: Vec<Key> = Vec::new();
    let mut more = false;
    let after_ref = after
        .as_ref()
        .map(|(ns, name)| (ns.as_str(), name.as_str()));
    for (key, object) in guard.store.list(
        &target.ty.group,
        &target.ty.plural,
        target.namespace.as_deref(),
        after_ref,
    ) {
        if object.hidden
            || !lifetimes.readable(object.created, object.ended, now)
            || !labels.matches(&object.value)
            || !fields_match(&fields, &object.value)
        {
            continue;
        }
        if limit.is_some_and(|l| items.len() >= l) {
            more = true;
            break;
        }
        let mut value = object.value.clone();
        if builtin_type {
            if let Some(map) = value.as_object_mut() {
                map.remove("kind");
                map.remove("apiVersion");
            }
        }
        if lie && target.ty.kind == "Job" {
            value["status"] =
                json!({"succeeded": 1, "conditions": [{"type": "Complete", "status": "True"}]});
        }
        items.push(value);
        listed.push(key.clone());
    }
    let rv = guard.store.rv();
    let mut metadata = json!({"resourceVersion": rv.to_string()});
    if let (true, Some(last)) = (more, listed.last()) {
        metadata["continue"] = json!(continue_token(rv, last));
    }
    guard.store.touch(&listed, now);
    Json(
        json!({"kind": format!("{}List", target.ty.kind), "apiVersion": target.api_version(),
        "metadata": metadata, "items": items}),
    )
    .into_response()
}

fn patch(inner: &Shared, target: &Target, name: &str, body: &[u8], method: &Method) -> Response {
    let Ok(patch) = serde_json::from_slice::<Value>(body) else {
        return status_error(
            400,
            "BadRequest",
            "the body of the request was in an unknown format",
            None,
        );
    };
    let mut guard = inner.lock().expect("simulator mutex poisoned");
    let key = target.key(name);
    let Some(current) = guard.store.get(&key).cloned() else {
        return target.not_found(name);
    };
    let mut value = current.value.clone();
    if method == Method::PUT {
        let given = patch["metadata"]["resourceVersion"].as_str();
        if given.is_some_and(|rv| Some(rv) != current.value["metadata"]["resourceVersion"].as_str())
        {
            return status_error(409, "Conflict", format!("Operation cannot be fulfilled on {}: the object has been modified; please apply your changes to the latest version and try again", target.named(name)), Some(target.details(name)));
        }
        if target.subresource.as_deref() == Some("status") {
            value["status"] = patch["status"].clone();
        } else {
            let meta = value["metadata"].clone();
            value = patch;
            value["metadata"] = meta;
        }
    } else if target.subresource.as_deref() == Some("status") {
        merge(&mut value["status"], &patch["status"]);
    } else {
        let mut patch = patch;
        if let Some(map) = patch.as_object_mut() {
            map.remove("status");
        }
        merge(&mut value, &patch);
    }
    if value["spec"] != current.value["spec"] {
        let generation = value["metadata"]["generation"].as_i64().unwrap_or(1);
        value["metadata"]["generation"] = json!(generation + 1);
    }
    let stored = guard.store.put(key, Object { value, ..current });
    Json(stored).into_response()
}

/// RFC 7386 JSON merge patch.
fn merge(target: &mut Value, patch: &Value) {
    match (target.as_object_mut(), patch.as_object()) {
        (Some(t), Some(p)) => {
            for (k, v) in p {
                if v.is_null() {
                    t.remove(k);
                } else {
                    merge(t.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        (_, Some(p)) => {
            *target = json!({});
            merge(target, &Value::Object(p.clone()));
        }
        _ => *target = patch.clone(),
    }
}

fn delete(
    inner: &Shared,
    target: &Target,
    name: &str,
    body: &[u8],
    query: &[(String, String)],
) -> Response {
    let options: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let policy = options["propagationPolicy"]
        .as_str()
        .or_else(|| param(query, "propagationPolicy"))
        .map(str::to_string);
    let policy = match policy.as_deref() {
        None if target.ty.kind == "Job" => "Orphan",
        None => "Background",
        Some(p @ ("Background" | "Foreground" | "Orphan")) => p,
        Some(other) => return invalid(target, name, &[("propagationPolicy".into(), format!("Unsupported value: {other:?}: supported values: \"Foreground\", \"Background\", \"Orphan\""))]),
    };
    let mut guard = inner.lock().expect("simulator mutex poisoned");
    let key = target.key(name);
    let now = Instant::now();
    let Some(object) = guard
        .store
        .get(&key)
        .filter(|o| guard.harness.lifetimes.readable(o.created, o.ended, now))
        .cloned()
    else {
        return target.not_found(name);
    };
    if let Some(uid) = options["preconditions"]["uid"].as_str() {
        if uid != object.uid() {
            // The registry's check before the delete (`BeforeDelete`), as the server words it.
            let kind = if target.ty.group.is_empty() {
                target.ty.kind.clone()
            } else {
                format!("{}.{}", target.ty.kind, target.ty.group)
            };
            return status_error(409, "Conflict", format!("Operation cannot be fulfilled on {kind} \"{name}\": the UID in the precondition ({uid}) does not match the UID in record ({}). The object might have been deleted and then recreated", object.uid()), Some(target.details(name)));
        }
    }
    if object.value["metadata"]["annotations"][crate::name::KEY].is_string() {
        guard.harness.counters.cancelled();
    }
    if target.ty.kind == "Namespace" {
        terminate(&mut guard, &key, now);
        return Json(
            guard
                .store
                .get(&key)
                .map(|o| o.value.clone())
                .unwrap_or(Value::Null),
        )
        .into_response();
    }
    if target.ty.kind == "CustomResourceDefinition" {
        guard.types.unregister(name);
    }
    let uid = object.uid().to_string();
    guard.controller.deleted(&uid);
    if policy == "Background" {
        let mut gone = object.value.clone();
        gone["metadata"]["deletionTimestamp"] = json!(super::controller::timestamp());
        guard.store.remove(&key);
        // A custom resource's store answers with the object; a built-in type's with a
        // Status (the generic registry's ReturnDeletedObject).
        if target.ty.group.contains('.') && target.ty.group != "apiextensions.k8s.io" {
            return Json(gone).into_response();
        }
        return Json(json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
            "details": {"name": name, "group": target.ty.group, "kind": target.ty.plural, "uid": uid}}))
        .into_response();
    }
    let finalizer = if policy == "Foreground" {
        "foregroundDeletion"
    } else {
        "orphan"
    };
    guard.store.modify(&key, |o| {
        o.value["metadata"]["deletionTimestamp"] = json!(super::controller::timestamp());
        o.value["metadata"]["finalizers"] = json!([finalizer]);
    });
    guard
        .removals
        .insert((now + Duration::from_millis(200), key.clone()));
    let value = guard
        .store
        .get(&key)
        .map(|o| o.value.clone())
        .unwrap_or_default();
    (StatusCode::OK, Json(value)).into_response()
}

/// Starts deleting the namespace at `key`: `Terminating` at once (creates in it refused),
/// gone with everything in it a moment later. False if there is none.
pub fn terminate(inner: &mut Inner, key: &Key, now: Instant) -> bool {
    let found = inner.store.modify(key, |o| {
        o.value["status"]["phase"] = json!("Terminating");
        o.value["metadata"]["deletionTimestamp"] = json!(super::controller::timestamp());
    });
    if found {
        inner
            .removals
            .insert((now + Duration::from_millis(300), key.clone()));
    }
    found
}

/// How long a watch lasts unless it says (the server's `--min-request-timeout` is 30 min).
const WATCH_TIMEOUT: Duration = Duration::from_secs(1800);

fn watch(inner: &Shared, target: &Target, query: &[(String, String)]) -> Response {
    let (labels, fields) = match selectors(query) {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let bookmarks = param(query, "allowWatchBookmarks") == Some("true");
    let timeout = param(query, "timeoutSeconds")
        .and_then(|t| t.parse::<u64>().ok())
        .map_or(WATCH_TIMEOUT, Duration::from_secs);
    let since = param(query, "resourceVersion").filter(|v| !v.is_empty() && *v != "0");
    let initial_end = param(query, "sendInitialEvents") == Some("true");
    let guard = inner.lock().expect("simulator mutex poisoned");
    let filter = Filter {
        resource: (target.ty.group.clone(), target.ty.plural.clone()),
        namespace: target.namespace.clone(),
        labels,
        fields,
    };
    let mut pending = VecDeque::new();
    let from = match since {
        Some(rv) => match rv.parse::<u64>() {
            Ok(rv) => rv,
            Err(_) => {
                return status_error(
                    400,
                    "BadRequest",
                    format!("invalid resource version: {rv}"),
                    None,
                )
            }
        },
        None => {
            // No version: the current objects first, as ADDED events.
            let now = Instant::now();
            for (_, o) in guard.store.list(
                &target.ty.group,
                &target.ty.plural,
                target.namespace.as_deref(),
                None,
            ) {
                if guard.harness.lifetimes.readable(o.created, o.ended, now)
                    && filter.labels.matches(&o.value)
                    && fields_match(&filter.fields, &o.value)
                {
                    pending.push_back(line("ADDED", &o.value));
                }
            }
            guard.store.rv()
        }
    };
    let Some((replay, rx)) = guard.store.follow(from) else {
        let gone = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": format!("too old resource version: {from} ({})", guard.store.oldest()),
            "reason": "Expired", "code": 410});
        pending.clear();
        pending.push_back(line("ERROR", &gone));
        return lines_body(pending);
    };
    for change in replay {
        if filter.matches(&change) {
            pending.push_back(line(change.kind, &change.object));
        }
    }
    let mut last_rv = guard.store.rv();
    if initial_end {
        pending.push_back(bookmark(target, last_rv, true));
    }
    last_rv = last_rv.max(from);
    let watching = Watching {
        pending,
        rx,
        filter,
        last_rv,
        bookmarks: bookmarks.then(|| {
            let every = guard.config.bookmark_every;
            tokio::time::interval_at(tokio::time::Instant::now() + every, every)
        }),
        deadline: tokio::time::Instant::now() + timeout,
        closed: guard.closer.subscribe(),
        kind: target.ty.kind.clone(),
        api_version: target.api_version(),
        inner: inner.clone(),
    };
    drop(guard);
    let stream = futures_util::stream::unfold(watching, Watching::next);
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        Body::from_stream(stream),
    )
        .into_response()
}

/// A watch's answer of these lines only.
fn lines_body(pending: VecDeque<Bytes>) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        Body::from_stream(futures_util::stream::iter(
            pending.into_iter().map(Ok::<_, Infallible>),
        )),
    )
        .into_response()
}

/// One watch event as a line of JSON.
fn line(kind: &str, object: &Value) -> Bytes {
    let mut text = json!({"type": kind, "object": object}).to_string();
    text.push('\n');
    Bytes::from(text)
}

fn bookmark(target: &Target, rv: u64, initial_end: bool) -> Bytes {
    bookmark_of(&target.ty.kind, &target.api_version(), rv, initial_end)
}

fn bookmark_of(kind: &str, api_version: &str, rv: u64, initial_end: bool) -> Bytes {
    let mut meta = json!({"resourceVersion": rv.to_string()});
    if initial_end {
        meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
    }
    line(
        "BOOKMARK",
        &json!({"kind": kind, "apiVersion": api_version, "metadata": meta}),
    )
}

/// Which changes a watch sends.
struct Filter {
    resource: (String, String),
    namespace: Option<String>,
    labels: Selector,
    fields: Fields,
}

impl Filter {
    fn matches(&self, change: &Change) -> bool {
        change.resource == self.resource
            && self
                .namespace
                .as_ref()
                .is_none_or(|ns| *ns == change.namespace)
            && self.labels.matches(&change.object)
            && fields_match(&self.fields, &change.object)
    }
}

/// An open watch.
struct Watching {
    pending: VecDeque<Bytes>,
    rx: tokio::sync::broadcast::Receiver<Arc<Change>>,
    filter: Filter,
    /// The last version this watch has passed (sent or not: not its type, or not selected).
    last_rv: u64,
    bookmarks: Option<tokio::time::Interval>,
    deadline: tokio::time::Instant,
    closed: tokio::sync::watch::Receiver<u64>,
    kind: String,
    api_version: String,
    inner: Shared,
}

impl Watching {
    async fn next(mut self) -> Option<(Result<Bytes, Infallible>, Self)> {
        use tokio::sync::broadcast::error::RecvError;
        loop {
            if let Some(line) = self.pending.pop_front() {
                self.inner
                    .lock()
                    .expect("simulator mutex poisoned")
                    .stats
                    .watch_events += 1;
                return Some((Ok(line), self));
            }
            let bookmark = async {
                match &mut self.bookmarks {
                    Some(i) => {
                        i.tick().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                () = tokio::time::sleep_until(self.deadline) => return None,
                _ = self.closed.changed() => return None,
                () = bookmark => {
                    let line = bookmark_of(&self.kind, &self.api_version, self.last_rv, false);
                    self.pending.push_back(line);
                }
                got = self.rx.recv() => match got {
                    Ok(change) => {
                        if change.rv > self.last_rv {
                            self.last_rv = change.rv;
                            if self.filter.matches(&change) {
                                self.pending.push_back(line(change.kind, &change.object));
                            }
                        }
                    }
                    // Fallen behind, or the simulator stopped: the server ends the watch;
                    // the client resumes from its last version.
                    Err(RecvError::Lagged(_) | RecvError::Closed) => return None,
                },
            }
        }
    }
}
