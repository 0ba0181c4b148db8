//! A declared API's description, read from `[providers.NAME]` with `kind = "http"` and checked
//! in one [`HttpApiConfig::build`] that reports every missing, bad or contradictory field by
//! its path (`providers.livy.status.state: missing ...`).
//!
//! The table (the book's docs/src/providers/http.md documents it field by field; `config/livy.toml` and
//! `config/dbt-cloud.toml` are complete examples):
//!
//! - `base_url`; `auth` (`type = "none" | "bearer" | "basic" | "header" | "oauth2"`, each secret
//!   given as `X` or `X_env`, the name of an environment variable); `vars` (values for
//!   `{vars.NAME}`);
//! - `key`: where tether's idempotency key goes (`in = "body" | "header" | "query"`, `name`,
//!   `value` a template holding `{key}`) and whether the API deduplicates on it
//!   (`deduplicated`);
//! - `submit`, `status`, `cancel`, `find`: calls (`method`, `path`, `query`, `body`, templated);
//!   `submit.handle` and `find.handle` pick the handle's fields from the answer by JSON pointer;
//!   `status.state` (and `message`, `url`) likewise; `find.items` and `find.match` say where the
//!   jobs of a list are and which field holds the key's value;
//! - `states`: the provider's states, each read as `pending`, `running`, `succeeded`, `failed`
//!   or `cancelled` (anything else is read as running and logged);
//! - `not_found` (statuses that mean "no such job", default `[404]`), `error_message` (where an
//!   error answer says what went wrong).

use std::collections::BTreeMap;

use tether_provider::registry::Env;
use tether_provider::settings::{Setting, Table};
use tether_provider::Problems;
use tether_provider::{CommonSettings, JobState, Secret};

use crate::template::{Body, Source, Template};

/// Where tether's key goes in a submission.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyIn {
    /// A top-level field of the JSON body.
    Body,
    /// A request header.
    Header,
    /// A query parameter.
    Query,
}

/// Where tether's key goes, and whether the API deduplicates on it.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyPlacement {
    /// Body, header or query.
    pub place: KeyIn,
    /// The field, header or parameter name.
    pub name: String,
    /// What is sent: a template holding `{key}` (`"tether {key}"`, `"{spec.name}-{key}"`).
    pub value: Template,
    /// Whether a second submission with the same value returns the first job (then a
    /// submission whose answer was lost may simply be repeated).
    pub deduplicated: bool,
}

/// How tether authenticates.
#[derive(Debug, Clone, PartialEq)]
pub enum Auth {
    /// No credentials.
    None,
    /// `Authorization: <scheme> <token>` (`Bearer`, or dbt Cloud's `Token`).
    Bearer {
        /// `Bearer`, `Token`, ...
        scheme: String,
        /// The token.
        token: Secret,
    },
    /// HTTP basic authentication.
    Basic {
        /// The user.
        username: String,
        /// The password.
        password: Secret,
    },
    /// A header of one's own (`X-API-Key: ...`).
    Header {
        /// Its name.
        name: String,
        /// Its value.
        value: Secret,
    },
    /// OAuth2 client credentials: tokens from `token_url`, cached until shortly before they
    /// expire.
    OAuth2 {
        /// The token endpoint.
        token_url: String,
        /// The client's id.
        client_id: String,
        /// Its secret.
        client_secret: Secret,
        /// The scope asked for, if any.
        scope: Option<String>,
    },
}

/// One HTTP call of the API.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    /// `GET`, `POST`, ...
    pub method: reqwest::Method,
    /// The path after `base_url`.
    pub path: Template,
    /// Query parameters.
    pub query: Vec<(String, Template)>,
    /// The JSON body, if any.
    pub body: Option<Body>,
}

/// Handle field name → JSON pointer into an answer (or a listed item).
pub type Picks = Vec<(String, String)>;

/// The submit call.
#[derive(Debug, Clone, PartialEq)]
pub struct Submit {
    /// The call.
    pub call: Call,
    /// The handle's fields, from the answer.
    pub handle: Picks,
}

/// The status call.
#[derive(Debug, Clone, PartialEq)]
pub struct Status {
    /// The call.
    pub call: Call,
    /// Where the state is.
    pub state: String,
    /// Where a human-readable message is.
    pub message: Option<String>,
    /// Where a link to the job's page is.
    pub url: Option<String>,
}

/// The find call: a list of jobs, one of which may carry the key.
#[derive(Debug, Clone, PartialEq)]
pub struct Find {
    /// The call.
    pub call: Call,
    /// Where the list of jobs is in the answer.
    pub items: String,
    /// Where, in a listed job, the key's value is.
    pub matches: String,
    /// The handle's fields, from a listed job.
    pub handle: Picks,
    /// Whether the list is newest first (tether reports jobs oldest first).
    pub newest_first: bool,
    /// How a list longer than one answer is read (none: one answer is the whole list).
    pub pages: Option<Pages>,
    /// The most answers one `find` reads (`find.max_pages`, default 20).
    pub max_pages: u32,
}

/// How `find` reads the pages of a list ([`tether_provider::paging`]).
#[derive(Debug, Clone, PartialEq)]
pub enum Pages {
    /// Offset pages: tether sets the query parameters `offset` (where the page starts) and
    /// `limit` (to `size`); a short page is the last (dbt Cloud's `offset` and `limit`,
    /// Livy's `from` and `size`).
    Offset {
        /// The parameter of the page's first item.
        offset: String,
        /// The parameter of the page's length.
        limit: String,
        /// The page's length.
        size: u64,
    },
    /// Token pages: the answer's token (at the JSON pointer `next`) is sent back as the query
    /// parameter `param`; an answer without one is the last.
    Token {
        /// Where the next page's token is in an answer.
        next: String,
        /// The parameter that takes it.
        param: String,
    },
}

/// A checked description of a REST job API.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpApiConfig {
    /// `https://livy.example.com:8998`, without a trailing slash.
    pub base_url: String,
    /// Credentials.
    pub auth: Auth,
    /// Values of `{vars.NAME}`.
    pub vars: BTreeMap<String, String>,
    /// Where the key goes.
    pub key: KeyPlacement,
    /// Submit.
    pub submit: Submit,
    /// Status.
    pub status: Status,
    /// The provider's states, read as tether's.
    pub states: BTreeMap<String, JobState>,
    /// Cancel.
    pub cancel: Call,
    /// Find (required where the API does not deduplicate on the key).
    pub find: Option<Find>,
    /// Statuses that mean "no such job".
    pub not_found: Vec<u16>,
    /// Where an error answer's message is.
    pub error_message: Option<String>,
    /// Polling, rate limit, retries, timeouts.
    pub common: CommonSettings,
}

/// The checks of a declared API's description beyond the shared readers of [`Problems`].
trait DeclaredChecks {
    fn template(&mut self, at: &str, text: &str) -> Option<Template>;
    fn pointer(&mut self, at: &str, pointer: Option<String>) -> Option<String>;
    fn pointer_field(&mut self, t: &mut Table, at: &str, key: &str, what: &str) -> Option<String>;
    fn secret(&mut self, table: &mut Table, at: &str, name: &str, env: Env) -> Option<Secret>;
}

impl DeclaredChecks for Problems {
    fn template(&mut self, at: &str, text: &str) -> Option<Template> {
        Template::parse(text).map_err(|e| self.at(at, e)).ok()
    }

    fn pointer(&mut self, at: &str, pointer: Option<String>) -> Option<String> {
        match pointer {
            Some(p) if p.is_empty() || p.starts_with('/') => Some(p),
            Some(p) => {
                self.at(
                    at,
                    format!("{p:?} is not a JSON pointer (\"/field/0/name\", or \"\" for all)"),
                );
                None
            }
            None => None,
        }
    }

    /// The JSON pointer `key` of a table at `at`; `what` says what it points to where it must
    /// be there (empty: optional).
    fn pointer_field(&mut self, t: &mut Table, at: &str, key: &str, what: &str) -> Option<String> {
        let text = if what.is_empty() {
            self.within(at).string(t, key)
        } else {
            self.within(at).required(t, key, what)
        };
        self.pointer(&format!("{at}{key}"), text)
    }

    /// A secret given as `name` or, by the variable it names, as `name_env`.
    fn secret(&mut self, table: &mut Table, at: &str, name: &str, env: Env) -> Option<Secret> {
        let given = self.within(at).string(table, name);
        let var_key = format!("{name}_env");
        let var = self.within(at).string(table, &var_key);
        match (given, var) {
            (Some(_), Some(_)) => {
                self.at(
                    &format!("{at}{name}"),
                    format!("give {name} or {var_key}, not both"),
                );
                None
            }
            (Some(v), None) => Some(Secret::new(v)),
            (None, Some(var)) => match env(&var) {
                Some(v) if !v.is_empty() => Some(Secret::new(v)),
                _ => {
                    self.at(
                        &format!("{at}{var_key}"),
                        format!("the environment variable {var} is not set"),
                    );
                    None
                }
            },
            (None, None) => {
                self.at(
                    &format!("{at}{name}"),
                    format!("missing (set {name} or {var_key})"),
                );
                None
            }
        }
    }
}

const STATES: &str = "pending, running, succeeded, failed or cancelled";

/// The states a provider's state may be read as ([`STATES`]; not tether's own, such as `lost`).
const DECLARABLE: [JobState; 5] = [
    JobState::Pending,
    JobState::Running,
    JobState::Succeeded,
    JobState::Failed,
    JobState::Cancelled,
];

fn job_state(s: &str) -> Option<JobState> {
    JobState::parse(s).filter(|j| DECLARABLE.contains(j))
}

/// The nested table `[name]` (`required` says what it is when it must be there, as for
/// [`Problems::table`]), read by `read`; the fields `read` leaves are reported as unknown.
/// `None`: absent, not a table, or refused by `read` (each reported but the absent optional one).
fn section<T>(
    p: &mut Problems,
    table: &mut Table,
    name: &str,
    required: &str,
    read: impl FnOnce(&mut Problems, &mut Table) -> Option<T>,
) -> Option<T> {
    let mut t = p.table(table, name, required)?;
    let value = read(p, &mut t);
    p.unknown(&format!("{name}."), &t);
    value
}

impl HttpApiConfig {
    /// Builds the description from a provider table and the environment, reporting every
    /// problem (prefixed with `prefix`, e.g. `providers.livy`).
    pub fn build(
        prefix: &str,
        mut table: Table,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, Vec<String>> {
        let mut p = Problems::new(prefix);
        table.remove("kind");
        let common = CommonSettings::take_from(&mut table, &mut p, &crate::edges::DECLARED);
        let base_url = base_url(&mut p, &mut table);
        // A bad [auth] is reported, so the description is refused whatever it defaults to.
        let auth =
            section(&mut p, &mut table, "auth", "", |p, t| auth(p, t, env)).unwrap_or(Auth::None);
        let vars = section(&mut p, &mut table, "vars", "", vars).unwrap_or_default();
        let key = section(
            &mut p,
            &mut table,
            "key",
            "where tether's idempotency key goes (in, name, deduplicated)",
            key,
        );
        let submit = section(
            &mut p,
            &mut table,
            "submit",
            "the call that starts a job (path, handle)",
            submit,
        );
        let status = section(
            &mut p,
            &mut table,
            "status",
            "the call that reads a job (path, state)",
            status,
        );
        let states = section(&mut p, &mut table, "states", "the state map (provider state = \"pending\" | \"running\" | \"succeeded\" | \"failed\" | \"cancelled\")", states);
        let cancel = section(
            &mut p,
            &mut table,
            "cancel",
            "the call that cancels a job (path)",
            |p, t| call(p, t, "cancel.", "POST"),
        );
        let find = section(&mut p, &mut table, "find", "", find);
        let not_found = not_found(&mut p, &mut table);
        let error_message = p.pointer_field(&mut table, "", "error_message", "");
        p.unknown("", &table);
        let parts = Parts {
            vars: &vars,
            key: key.as_ref(),
            submit: submit.as_ref(),
            status: status.as_ref(),
            cancel: cancel.as_ref(),
            find: find.as_ref(),
        };
        contradictions(&mut p, &parts);
        match (base_url, key, submit, status, states, cancel) {
            (Some(base_url), Some(key), Some(submit), Some(status), Some(states), Some(cancel))
                if p.is_empty() =>
            {
                Ok(Self {
                    base_url,
                    auth,
                    vars,
                    key,
                    submit,
                    status,
                    states,
                    cancel,
                    find,
                    not_found,
                    error_message,
                    common,
                })
            }
            _ => Err(p.into_lines()),
        }
    }
}

fn call_sources(call: &Call) -> Vec<&Source> {
    let mut all: Vec<&Source> = call.path.sources().collect();
    for (_, t) in &call.query {
        all.extend(t.sources());
    }
    if let Some(b) = &call.body {
        all.extend(b.sources());
    }
    all
}

/// `base_url`: required, `https://` (or `http://`), without a trailing `/`.
fn base_url(p: &mut Problems, table: &mut Table) -> Option<String> {
    match p.required(table, "base_url", "the API's URL (https://...)") {
        Some(u) if u.starts_with("https://") || u.starts_with("http://") => {
            Some(u.trim_end_matches('/').to_string())
        }
        Some(u) => {
            p.at(
                "base_url",
                format!("{u:?} must start with https:// (or http://)"),
            );
            None
        }
        None => None,
    }
}

/// `[vars]`: strings (or whole numbers) the calls may name.
fn vars(p: &mut Problems, t: &mut Table) -> Option<BTreeMap<String, String>> {
    let vars = std::mem::take(t)
        .into_iter()
        .filter_map(|(k, v)| match v {
            Setting::String(s) => Some((k, s)),
            Setting::Integer(i) => Some((k, i.to_string())),
            other => {
                p.at(
                    &format!("vars.{k}"),
                    format!("must be a string, not {}", other.type_str()),
                );
                None
            }
        })
        .collect();
    Some(vars)
}

/// `[submit]`: the call, and where the handle is in its answer.
fn submit(p: &mut Problems, t: &mut Table) -> Option<Submit> {
    let call = call(p, t, "submit.", "POST");
    let handle = picks(p, t, "submit.", true);
    Some(Submit {
        call: call?,
        handle: handle?,
    })
}

/// `[status]`: the call, and where the state, message and URL are in its answer.
fn status(p: &mut Problems, t: &mut Table) -> Option<Status> {
    let call = call(p, t, "status.", "GET");
    let mut field = |key: &str, what: &str| p.pointer_field(t, "status.", key, what);
    let state = field("state", "the JSON pointer to the job's state in the answer");
    let (message, url) = (field("message", ""), field("url", ""));
    Some(Status {
        call: call?,
        state: state?,
        message,
        url,
    })
}

/// `[states]`: each of the provider's states, as one of tether's.
fn states(p: &mut Problems, t: &mut Table) -> Option<BTreeMap<String, JobState>> {
    if t.is_empty() {
        p.at("states", "is empty: map each of the provider's states");
        return None;
    }
    let mut states = BTreeMap::new();
    for (raw, v) in std::mem::take(t) {
        match &v {
            Setting::String(s) if job_state(s).is_some() => {
                states.insert(raw, job_state(s).expect("checked"));
            }
            other => p.at(
                &format!("states.{raw}"),
                format!("{other} is not one of {STATES}"),
            ),
        }
    }
    Some(states)
}

/// `[find]`: the call that lists jobs, and how a listed job is matched and read.
fn find(p: &mut Problems, t: &mut Table) -> Option<Find> {
    let call = call(p, t, "find.", "GET");
    let mut field = |key: &str, what: &str| p.pointer_field(t, "find.", key, what);
    let items = field(
        "items",
        "the JSON pointer to the list of jobs in the answer",
    );
    let matches = field(
        "match",
        "the JSON pointer, in a listed job, to the key's value",
    );
    let handle = picks(p, t, "find.", true);
    let newest_first = match t.remove("newest_first") {
        None => false,
        Some(Setting::Boolean(b)) => b,
        Some(other) => {
            p.at(
                "find.newest_first",
                format!("must be true or false, not {other}"),
            );
            false
        }
    };
    let max_pages = p.within("find.").positive(t, "max_pages").unwrap_or(20);
    let pages = match p.within("find.").table(t, "pages", "") {
        None => None,
        Some(mut pt) => pages(p, &mut pt),
    };
    let call = call?;
    if let Some(pages) = &pages {
        let (a, b) = match pages {
            Pages::Offset { offset, limit, .. } => (offset, Some(limit)),
            Pages::Token { param, .. } => (param, None),
        };
        for name in std::iter::once(a).chain(b) {
            if call.query.iter().any(|(k, _)| k == name) {
                p.at(
                    &format!("find.query.{name}"),
                    "is set by tether from find.pages: leave it out of the query",
                );
            }
        }
    }
    Some(Find {
        call,
        items: items?,
        matches: matches?,
        handle: handle?,
        newest_first,
        pages,
        max_pages,
    })
}

/// `[find.pages]`: `offset`, `limit` and `size` (offset pages), or `next` and `param` (token
/// pages).
fn pages(p: &mut Problems, t: &mut Table) -> Option<Pages> {
    let mut w = p.within("find.pages.");
    let (offset, limit) = (w.string(t, "offset"), w.string(t, "limit"));
    let size = w.whole(t, "size");
    let (next, param) = (w.string(t, "next"), w.string(t, "param"));
    let pages = match (offset, limit, size, next, param) {
        (Some(offset), Some(limit), Some(size @ 1..), None, None) => Some(Pages::Offset {
            offset,
            limit,
            size: u64::from(size),
        }),
        (None, None, None, Some(next), Some(param)) => p
            .pointer("find.pages.next", Some(next))
            .map(|next| Pages::Token { next, param }),
        _ => {
            p.at(
                "find.pages",
                "must be either offset, limit and size (a whole number above 0), or next and \
                 param",
            );
            None
        }
    };
    p.unknown("find.pages.", t);
    pages
}

/// `not_found`: the error statuses that mean "no such job" (404 when not given).
fn not_found(p: &mut Problems, table: &mut Table) -> Vec<u16> {
    match table.remove("not_found") {
        None => vec![404],
        Some(Setting::List(codes)) => codes
            .into_iter()
            .filter_map(|c| match c {
                Setting::Integer(n) if (400..600).contains(&n) => Some(n as u16),
                other => {
                    p.at("not_found", format!("{other} is not an HTTP error status"));
                    None
                }
            })
            .collect(),
        Some(other) => {
            p.at(
                "not_found",
                format!("must be a list of statuses, not {other}"),
            );
            vec![404]
        }
    }
}

/// The parts of a description that must agree with each other.
struct Parts<'a> {
    vars: &'a BTreeMap<String, String>,
    key: Option<&'a KeyPlacement>,
    submit: Option<&'a Submit>,
    status: Option<&'a Status>,
    cancel: Option<&'a Call>,
    find: Option<&'a Find>,
}

/// Contradictions between the parts: a key the API does not deduplicate and no find, a key
/// in a body that is not sent, a found handle unlike the submitted one, and a call that
/// names what it cannot know.
fn contradictions(p: &mut Problems, parts: &Parts<'_>) {
    if let (Some(key), None) = (parts.key, parts.find) {
        if !key.deduplicated {
            p.at("find", "missing: the API does not deduplicate on the key (key.deduplicated = false), so tether needs a find call to look for a job whose answer was lost before it submits again");
        }
    }
    if let (Some(key), Some(submit)) = (parts.key, parts.submit) {
        if key.place == KeyIn::Body && submit.call.body.is_none() {
            p.at(
                "key.in",
                format!(
                    "\"body\", but submit ({}) sends no body",
                    submit.call.method
                ),
            );
        }
    }
    if let (Some(submit), Some(find)) = (parts.submit, parts.find) {
        let names = |p: &Picks| p.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
        if names(&submit.handle) != names(&find.handle) {
            p.at("find.handle", format!("names {:?}, but submit.handle names {:?}: a found job's handle must have the same fields", names(&find.handle), names(&submit.handle)));
        }
    }
    let Some(submit) = parts.submit else {
        return;
    };
    let fields: Vec<&str> = submit.handle.iter().map(|(n, _)| n.as_str()).collect();
    let mut check = |at: &str, call: &Call, allowed: &[&str]| {
        for s in call_sources(call) {
            let kind = match s {
                Source::Key => "key",
                Source::Spec(_) => "spec",
                Source::Handle(_) => "handle",
                Source::Var(_) => "vars",
            };
            if !allowed.contains(&kind) {
                p.at(at, format!("{s}: this call knows {}", allowed.join(", ")));
            }
            match s {
                Source::Handle(f) if !fields.contains(&f.as_str()) => {
                    p.at(at, format!("{s}: submit.handle has no field {f:?}"))
                }
                Source::Var(v) if !parts.vars.contains_key(v) => {
                    p.at(at, format!("{s}: vars has no {v:?}"))
                }
                _ => {}
            }
        }
    };
    check("submit", &submit.call, &["key", "spec", "vars"]);
    if let Some(status) = parts.status {
        check("status", &status.call, &["handle", "vars"]);
    }
    if let Some(cancel) = parts.cancel {
        check("cancel", cancel, &["handle", "vars"]);
    }
    if let Some(find) = parts.find {
        check("find", &find.call, &["key", "spec", "vars"]);
    }
}

fn auth(p: &mut Problems, t: &mut Table, env: &dyn Fn(&str) -> Option<String>) -> Option<Auth> {
    let kind = p
        .within("auth.")
        .required(t, "type", "none, bearer, basic, header or oauth2");
    let auth = match kind.as_deref() {
        None => None,
        Some("none") => Some(Auth::None),
        Some("bearer") => {
            let scheme = p
                .within("auth.")
                .string(t, "scheme")
                .unwrap_or_else(|| "Bearer".into());
            p.secret(t, "auth.", "token", env)
                .map(|token| Auth::Bearer { scheme, token })
        }
        Some("basic") => {
            let username = p.within("auth.").required(t, "username", "the user");
            let password = p.secret(t, "auth.", "password", env);
            Some(Auth::Basic {
                username: username?,
                password: password?,
            })
        }
        Some("header") => {
            let name = p.within("auth.").required(t, "name", "the header's name");
            if let Some(n) = &name {
                if reqwest::header::HeaderName::from_bytes(n.as_bytes()).is_err() {
                    p.at("auth.name", format!("{n:?} is not a header name"));
                }
            }
            let value = p.secret(t, "auth.", "value", env);
            Some(Auth::Header {
                name: name?,
                value: value?,
            })
        }
        Some("oauth2") => {
            let token_url = p
                .within("auth.")
                .required(t, "token_url", "the token endpoint");
            if let Some(u) = &token_url {
                if !(u.starts_with("https://") || u.starts_with("http://")) {
                    p.at("auth.token_url", format!("{u:?} must start with https://"));
                }
            }
            let client_id = p
                .within("auth.")
                .required(t, "client_id", "the client's id");
            let client_secret = p.secret(t, "auth.", "client_secret", env);
            let scope = p.within("auth.").string(t, "scope");
            Some(Auth::OAuth2 {
                token_url: token_url?,
                client_id: client_id?,
                client_secret: client_secret?,
                scope,
            })
        }
        Some(other) => {
            p.at(
                "auth.type",
                format!("{other:?} is not one of none, bearer, basic, header, oauth2"),
            );
            None
        }
    };
    auth
}

fn key(p: &mut Problems, t: &mut Table) -> Option<KeyPlacement> {
    let place = match p
        .within("key.")
        .required(t, "in", "\"body\", \"header\" or \"query\"")
        .as_deref()
    {
        None => None,
        Some("body") => Some(KeyIn::Body),
        Some("header") => Some(KeyIn::Header),
        Some("query") => Some(KeyIn::Query),
        Some(other) => {
            p.at("key.in", format!("{other:?} is not body, header or query"));
            None
        }
    };
    let name = p.within("key.").required(
        t,
        "name",
        "the body field, header or parameter that carries the key",
    );
    if let (Some(KeyIn::Header), Some(n)) = (place, &name) {
        if reqwest::header::HeaderName::from_bytes(n.as_bytes()).is_err() {
            p.at("key.name", format!("{n:?} is not a header name"));
        }
    }
    let value = p
        .within("key.")
        .string(t, "value")
        .unwrap_or_else(|| "{key}".into());
    let value = p.template("key.value", &value).and_then(|v| {
        if !v.sources().any(|s| *s == Source::Key) {
            p.at("key.value", "must hold {key}");
            return None;
        }
        if let Some(s) = v.sources().find(|s| matches!(s, Source::Handle(_))) {
            p.at("key.value", format!("{s}: a submission has no handle yet"));
            return None;
        }
        Some(v)
    });
    let deduplicated = match t.remove("deduplicated") {
        Some(Setting::Boolean(b)) => Some(b),
        None => {
            p.at("key.deduplicated", "missing: whether the API returns the first job for a repeated key (true) or makes another (false)");
            None
        }
        Some(other) => {
            p.at(
                "key.deduplicated",
                format!("must be true or false, not {other}"),
            );
            None
        }
    };
    Some(KeyPlacement {
        place: place?,
        name: name?,
        value: value?,
        deduplicated: deduplicated?,
    })
}

/// A call's `method`, `path`, `query` and `body` (the body of a POST, PUT or PATCH defaults to
/// the spec itself).
fn call(p: &mut Problems, t: &mut Table, at: &str, method: &str) -> Option<Call> {
    let method_text = p
        .within(at)
        .string(t, "method")
        .unwrap_or_else(|| method.into());
    let method = match method_text.to_ascii_uppercase().as_str() {
        "GET" => Some(reqwest::Method::GET),
        "POST" => Some(reqwest::Method::POST),
        "PUT" => Some(reqwest::Method::PUT),
        "PATCH" => Some(reqwest::Method::PATCH),
        "DELETE" => Some(reqwest::Method::DELETE),
        _ => {
            p.at(
                &format!("{at}method"),
                format!("{method_text:?} is not GET, POST, PUT, PATCH or DELETE"),
            );
            None
        }
    };
    let path = p.within(at).required(
        t,
        "path",
        "the path after base_url (\"/batches/{handle.id}\")",
    );
    let path = path.and_then(|text| {
        if !text.starts_with('/') {
            p.at(&format!("{at}path"), format!("{text:?} must start with /"));
            return None;
        }
        p.template(&format!("{at}path"), &text)
    });
    let query = match t.remove("query") {
        None => Some(Vec::new()),
        Some(Setting::Table(q)) => q
            .into_iter()
            .map(|(k, v)| match v {
                Setting::String(s) => p.template(&format!("{at}query.{k}"), &s).map(|t| (k, t)),
                Setting::Integer(i) => Some((k, Template::parse(&i.to_string()).expect("digits"))),
                other => {
                    p.at(
                        &format!("{at}query.{k}"),
                        format!("must be a string, not {}", other.type_str()),
                    );
                    None
                }
            })
            .collect::<Option<Vec<_>>>(),
        Some(other) => {
            p.at(
                &format!("{at}query"),
                format!("must be a table, not {}", other.type_str()),
            );
            None
        }
    };
    let sends_body = matches!(method, Some(ref m) if *m == reqwest::Method::POST || *m == reqwest::Method::PUT || *m == reqwest::Method::PATCH);
    let body = match t.remove("body") {
        Some(b) if !sends_body => {
            p.at(
                &format!("{at}body"),
                format!("{method_text} sends no body ({b})"),
            );
            None
        }
        Some(b) => Body::from_setting(&b, &p.path(&format!("{at}body")))
            .map_err(|e| p.push(e))
            .ok(),
        None if sends_body && at == "submit." => {
            Some(Body::Text(Template::parse("{spec}").expect("valid")))
        }
        None => None,
    };
    Some(Call {
        method: method?,
        path: path?,
        query: query?,
        body,
    })
}

fn picks(p: &mut Problems, t: &mut Table, at: &str, required: bool) -> Option<Picks> {
    match t.remove("handle") {
        Some(Setting::Table(h)) if !h.is_empty() => h
            .into_iter()
            .map(|(name, v)| match v {
                Setting::String(ptr) => p
                    .pointer(&format!("{at}handle.{name}"), Some(ptr))
                    .map(|ptr| (name, ptr)),
                other => {
                    p.at(
                        &format!("{at}handle.{name}"),
                        format!("must be a JSON pointer string, not {}", other.type_str()),
                    );
                    None
                }
            })
            .collect(),
        Some(Setting::Table(_)) => {
            p.at(
                &format!("{at}handle"),
                "is empty: name at least one field (id = \"/id\")",
            );
            None
        }
        Some(other) => {
            p.at(
                &format!("{at}handle"),
                format!("must be a table of JSON pointers, not {}", other.type_str()),
            );
            None
        }
        None if required => {
            p.at(
                &format!("{at}handle"),
                "missing: the handle's fields, each a JSON pointer into the answer (id = \"/id\")",
            );
            None
        }
        None => None,
    }
}

/// The tests' shared fixtures (the example descriptions), as `tests/hostile.rs` uses them.
#[cfg(test)]
#[path = "../tests/common/mod.rs"]
mod common;

#[cfg(test)]
mod tests {
    use super::common::example;
    use super::*;

    fn env(name: &str) -> Option<String> {
        matches!(name, "LIVY_PASSWORD" | "DBT_CLOUD_API_TOKEN").then(|| "s3cr3t".to_string())
    }

    fn problems(table: Table) -> String {
        HttpApiConfig::build("providers.x", table, &env)
            .unwrap_err()
            .join("\n")
    }

    fn sub<'a>(table: &'a mut Table, key: &str) -> &'a mut Table {
        match table.get_mut(key) {
            Some(Setting::Table(t)) => t,
            _ => panic!("no table {key}"),
        }
    }

    #[test]
    fn the_examples_are_complete() {
        for file in ["livy.toml", "dbt-cloud.toml"] {
            let c = HttpApiConfig::build("providers.x", example(file), &env)
                .unwrap_or_else(|p| panic!("{file}: {}", p.join("; ")));
            assert!(!c.key.deduplicated && c.find.is_some(), "{file}");
            assert!(
                !format!("{c:?}").contains("s3cr3t"),
                "{file}: the secret prints"
            );
        }
        let dbt = HttpApiConfig::build("providers.x", example("dbt-cloud.toml"), &env).unwrap();
        assert_eq!(dbt.states.get("10"), Some(&JobState::Succeeded));
        assert_eq!(
            dbt.auth,
            Auth::Bearer {
                scheme: "Token".into(),
                token: Secret::new("s3cr3t")
            }
        );
    }

    #[test]
    fn a_missing_state_pointer_or_state_map_is_named() {
        let mut t = example("livy.toml");
        sub(&mut t, "status").remove("state");
        let p = problems(t);
        assert!(p.contains("providers.x.status.state: missing"), "{p}");

        let mut t = example("livy.toml");
        t.remove("states");
        let p = problems(t);
        assert!(p.contains("providers.x.states: missing"), "{p}");

        let mut t = example("livy.toml");
        t.insert("states".into(), Setting::Table(Table::new()));
        assert!(problems(t).contains("providers.x.states: is empty"));

        let mut t = example("dbt-cloud.toml");
        sub(&mut t, "states").insert("10".into(), Setting::from("done"));
        let p = problems(t);
        assert!(
            p.contains("providers.x.states.10: \"done\" is not one of"),
            "{p}"
        );
    }

    #[test]
    fn contradictions_and_unknowns_are_named() {
        // No find, while the API does not deduplicate.
        let mut t = example("livy.toml");
        t.remove("find");
        assert!(problems(t).contains("providers.x.find: missing: the API does not deduplicate"));
        // A handle field the submit answer does not give.
        let mut t = example("livy.toml");
        sub(&mut t, "status").insert("path".into(), Setting::from("/batches/{handle.batch}"));
        assert!(
            problems(t).contains("providers.x.status: {handle.batch}: submit.handle has no field")
        );
        // The spec at status time.
        let mut t = example("livy.toml");
        sub(&mut t, "cancel").insert("path".into(), Setting::from("/batches/{spec.file}"));
        assert!(
            problems(t).contains("providers.x.cancel: {spec.file}: this call knows handle, vars")
        );
        // find's handle fields differ from submit's.
        let mut t = example("livy.toml");
        sub(&mut t, "find").insert(
            "handle".into(),
            Setting::Table([("batch".to_string(), Setting::from("/id"))].into()),
        );
        assert!(problems(t).contains("providers.x.find.handle: names"));
        // A key template without the key, a method without a body, unknown fields, a secret's
        // variable unset, a pointer that is not one.
        let mut t = example("livy.toml");
        sub(&mut t, "key").insert("value".into(), Setting::from("{spec.file}"));
        sub(&mut t, "submit").insert("method".into(), Setting::from("FETCH"));
        sub(&mut t, "status").insert("colour".into(), Setting::from("red"));
        sub(&mut t, "status").insert("url".into(), Setting::from("appInfo.sparkUiUrl"));
        sub(&mut t, "auth").insert("password_env".into(), Setting::from("NOT_SET_ANYWHERE"));
        t.insert("retries".into(), Setting::Integer(3));
        let p = problems(t);
        for needle in [
            "providers.x.key.value: must hold {key}",
            "providers.x.submit.method: \"FETCH\" is not",
            "providers.x.status.colour: unknown field",
            "providers.x.status.url: \"appInfo.sparkUiUrl\" is not a JSON pointer",
            "providers.x.auth.password_env: the environment variable NOT_SET_ANYWHERE is not set",
            "providers.x.retries: unknown field",
        ] {
            assert!(p.contains(needle), "{needle} not in\n{p}");
        }
        // Nothing at all: each required part named.
        let p = problems(Table::new());
        for needle in [
            "base_url: missing",
            "key: missing",
            "submit: missing",
            "status: missing",
            "states: missing",
            "cancel: missing",
        ] {
            assert!(p.contains(needle), "{needle} not in\n{p}");
        }
    }
}
