//! Templates: the paths, queries, headers and bodies of a declared API's calls, with
//! placeholders filled from the job.
//!
//! A placeholder is `{key}` (tether's idempotency key, or the key's value as `[key]` formats
//! it), `{spec.a.b}` (a field of the job spec; `{spec}` the whole spec), `{handle.x}` (a field
//! of the job's handle) or `{vars.x}` (a value of the account's `[vars]`). In a path or query a
//! value is percent-encoded; in a body, a string that is exactly one placeholder becomes the
//! value itself (a number stays a number, a list a list), and a body field whose placeholder
//! names a spec field the spec lacks is left out.

use std::collections::BTreeMap;

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde_json::{Map, Value};
use tether_provider::settings::Setting;

/// Characters escaped in a path segment or query value (all but RFC 3986's unreserved).
const ESCAPED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Where a placeholder's value comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// `{key}`.
    Key,
    /// `{spec}`, `{spec.a.b}`: a path into the spec (empty: all of it).
    Spec(Vec<String>),
    /// `{handle.x}`.
    Handle(String),
    /// `{vars.x}`.
    Var(String),
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Key => write!(f, "{{key}}"),
            Source::Spec(path) if path.is_empty() => write!(f, "{{spec}}"),
            Source::Spec(path) => write!(f, "{{spec.{}}}", path.join(".")),
            Source::Handle(name) => write!(f, "{{handle.{name}}}"),
            Source::Var(name) => write!(f, "{{vars.{name}}}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Piece {
    Text(String),
    Var(Source),
}

/// A text with placeholders.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    pieces: Vec<Piece>,
}

/// What a template is filled from.
#[derive(Debug, Clone, Copy, Default)]
pub struct Context<'a> {
    /// `{key}`.
    pub key: Option<&'a str>,
    /// `{spec...}`.
    pub spec: Option<&'a Value>,
    /// `{handle...}`.
    pub handle: Option<&'a Value>,
    /// `{vars...}`.
    pub vars: Option<&'a BTreeMap<String, String>>,
}

impl Template {
    /// Parses `text`; an error says what is wrong with it.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut pieces = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find('{') {
            if open > 0 {
                pieces.push(Piece::Text(rest[..open].to_string()));
            }
            let after = &rest[open + 1..];
            let Some(close) = after.find('}') else {
                return Err(format!("{text:?}: a '{{' without its '}}'"));
            };
            pieces.push(Piece::Var(
                source(&after[..close]).map_err(|e| format!("{text:?}: {e}"))?,
            ));
            rest = &after[close + 1..];
        }
        if rest.contains('}') {
            return Err(format!("{text:?}: a '}}' without its '{{'"));
        }
        if !rest.is_empty() {
            pieces.push(Piece::Text(rest.to_string()));
        }
        Ok(Self { pieces })
    }

    /// The placeholders it holds.
    pub fn sources(&self) -> impl Iterator<Item = &Source> {
        self.pieces.iter().filter_map(|p| match p {
            Piece::Var(s) => Some(s),
            Piece::Text(_) => None,
        })
    }

    /// The placeholder the template is made of alone, if it is one.
    pub fn whole(&self) -> Option<&Source> {
        match self.pieces.as_slice() {
            [Piece::Var(s)] => Some(s),
            _ => None,
        }
    }

    /// The text, each value percent-encoded if `escape`. An error names a missing value.
    pub fn render(&self, ctx: &Context<'_>, escape: bool) -> Result<String, String> {
        let mut out = String::new();
        for piece in &self.pieces {
            match piece {
                Piece::Text(t) => out.push_str(t),
                Piece::Var(s) => {
                    let value = lookup(s, ctx).ok_or_else(|| format!("{s} has no value"))?;
                    let text = match &value {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    if escape {
                        out.extend(utf8_percent_encode(&text, ESCAPED));
                    } else {
                        out.push_str(&text);
                    }
                }
            }
        }
        Ok(out)
    }
}

fn source(name: &str) -> Result<Source, String> {
    let name = name.trim();
    let mut parts = name.split('.');
    let head = parts.next().unwrap_or_default();
    let rest: Vec<String> = parts.map(str::to_string).collect();
    if rest.iter().any(String::is_empty) {
        return Err(format!("{{{name}}}: an empty name in the path"));
    }
    match (head, rest.as_slice()) {
        ("key", []) => Ok(Source::Key),
        ("spec", _) => Ok(Source::Spec(rest)),
        ("handle", [field]) => Ok(Source::Handle(field.clone())),
        ("vars", [var]) => Ok(Source::Var(var.clone())),
        _ => Err(format!(
            "{{{name}}} is not a placeholder (use {{key}}, {{spec.FIELD}}, {{handle.FIELD}} or {{vars.NAME}})"
        )),
    }
}

/// The value a placeholder stands for, if the context has it.
pub fn lookup(source: &Source, ctx: &Context<'_>) -> Option<Value> {
    match source {
        Source::Key => ctx.key.map(|k| Value::String(k.to_string())),
        Source::Spec(path) => {
            let mut v = ctx.spec?;
            for part in path {
                v = match v {
                    Value::Object(m) => m.get(part)?,
                    Value::Array(a) => a.get(part.parse::<usize>().ok()?)?,
                    _ => return None,
                };
            }
            (!v.is_null()).then(|| v.clone())
        }
        Source::Handle(field) => ctx.handle?.get(field).filter(|v| !v.is_null()).cloned(),
        Source::Var(name) => ctx.vars?.get(name).map(|v| Value::String(v.clone())),
    }
}

/// A request body: JSON whose strings may hold placeholders.
#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    /// A string template.
    Text(Template),
    /// A number, boolean, ... as it is.
    Literal(Value),
    /// An object.
    Object(Vec<(String, Body)>),
    /// A list.
    List(Vec<Body>),
}

impl Body {
    /// A body from its configuration (a string, or a table). `at` names it in errors.
    pub fn from_setting(setting: &Setting, at: &str) -> Result<Self, String> {
        Ok(match setting {
            Setting::String(s) => Body::Text(Template::parse(s).map_err(|e| format!("{at}: {e}"))?),
            Setting::Integer(i) => Body::Literal(Value::from(*i)),
            Setting::Float(f) => Body::Literal(Value::from(*f)),
            Setting::Boolean(b) => Body::Literal(Value::Bool(*b)),
            Setting::Datetime(d) => Body::Literal(Value::String(d.clone())),
            Setting::List(items) => Body::List(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| Body::from_setting(item, &format!("{at}[{i}]")))
                    .collect::<Result<_, _>>()?,
            ),
            Setting::Table(t) => Body::Object(
                t.iter()
                    .map(|(k, v)| Ok((k.clone(), Body::from_setting(v, &format!("{at}.{k}"))?)))
                    .collect::<Result<_, String>>()?,
            ),
        })
    }

    /// Every placeholder it holds.
    pub fn sources(&self) -> Vec<&Source> {
        match self {
            Body::Text(t) => t.sources().collect(),
            Body::Literal(_) => Vec::new(),
            Body::Object(fields) => fields.iter().flat_map(|(_, b)| b.sources()).collect(),
            Body::List(items) => items.iter().flat_map(Body::sources).collect(),
        }
    }

    /// The JSON body. A field whose value is one placeholder of a spec field the spec lacks
    /// is left out; any other missing value is an error naming it.
    pub fn render(&self, ctx: &Context<'_>) -> Result<Value, String> {
        Ok(self.render_field(ctx)?.unwrap_or(Value::Null))
    }

    fn render_field(&self, ctx: &Context<'_>) -> Result<Option<Value>, String> {
        Ok(Some(match self {
            Body::Text(t) => match t.whole() {
                Some(s @ Source::Spec(_)) => match lookup(s, ctx) {
                    Some(v) => v,
                    None => return Ok(None),
                },
                Some(s) => lookup(s, ctx).ok_or_else(|| format!("{s} has no value"))?,
                None => Value::String(t.render(ctx, false)?),
            },
            Body::Literal(v) => v.clone(),
            Body::Object(fields) => {
                let mut out = Map::new();
                for (k, b) in fields {
                    if let Some(v) = b.render_field(ctx)? {
                        out.insert(k.clone(), v);
                    }
                }
                Value::Object(out)
            }
            Body::List(items) => Value::Array(
                items
                    .iter()
                    .filter_map(|b| b.render_field(ctx).transpose())
                    .collect::<Result<_, _>>()?,
            ),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn placeholders_are_filled_and_escaped() {
        let t = Template::parse("/api/v2/accounts/{vars.account}/runs/{handle.id}/").unwrap();
        let vars = BTreeMap::from([("account".to_string(), "4 2".to_string())]);
        let handle = json!({"id": 7});
        let ctx = Context {
            handle: Some(&handle),
            vars: Some(&vars),
            ..Context::default()
        };
        assert_eq!(
            t.render(&ctx, true).unwrap(),
            "/api/v2/accounts/4%202/runs/7/"
        );
        let t = Template::parse("/x/{handle.missing}").unwrap();
        assert!(t
            .render(&ctx, true)
            .unwrap_err()
            .contains("{handle.missing}"));
        for bad in [
            "{spec",
            "a}",
            "{nope}",
            "{handle}",
            "{handle.a.b}",
            "{spec..a}",
        ] {
            assert!(Template::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn bodies_keep_types_and_leave_out_missing_optionals() {
        let body = Body::from_setting(
            &Setting::Table(
                [
                    ("cause".to_string(), Setting::from("tether {key}")),
                    ("steps".to_string(), Setting::from("{spec.steps}")),
                    ("branch".to_string(), Setting::from("{spec.git_branch}")),
                    ("n".to_string(), Setting::Integer(3)),
                ]
                .into(),
            ),
            "body",
        )
        .unwrap();
        let spec = json!({"steps": ["dbt run"], "job_id": 1});
        let ctx = Context {
            key: Some("k1"),
            spec: Some(&spec),
            ..Context::default()
        };
        assert_eq!(
            body.render(&ctx).unwrap(),
            json!({"cause": "tether k1", "steps": ["dbt run"], "n": 3})
        );
        let whole = Body::from_setting(&Setting::from("{spec}"), "body").unwrap();
        assert_eq!(whole.render(&ctx).unwrap(), spec);
    }
}
