//! Success and failure conditions over a resource, in the syntax of Argo Workflows' resource
//! template (`successCondition`, `failureCondition`): requirements joined by commas, all of
//! which must hold, each a path into the resource, an operator and a value:
//!
//! - `status.succeeded > 0`, `status.phase == Succeeded`, `status.phase != Running`,
//!   `status.applicationState.state in (FAILED, SUBMISSION_FAILED)`, `status.x notin (a, b)`;
//! - `status.completionTime` (the path exists and is not null), `!status.active` (it does not);
//! - `=` is `==`; `<`, `<=`, `>`, `>=` compare numbers (a value that is not a number never
//!   satisfies them).
//!
//! A path is dot-separated names, and on a list either an index (`status.conditions[0]`) or a
//! selector naming the first item whose field has a value (`status.conditions[type=Complete]`),
//! as the conditions of Kubernetes' own resources are read. A value compares as text with the
//! resource's string, number or boolean (`True` is Kubernetes' condition status, a string;
//! `true` a JSON boolean; either matches the other's spelling, case aside, for booleans).
//!
//! Reference: Argo Workflows, "Resource template" (`successCondition`, `failureCondition`,
//! whose requirements are parsed as Kubernetes label selectors over JSON paths).

use std::fmt;

use serde_json::Value;

/// A condition: every requirement must hold.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    text: String,
    requirements: Vec<Requirement>,
}

#[derive(Debug, Clone, PartialEq)]
struct Requirement {
    path: Path,
    op: Op,
}

#[derive(Debug, Clone, PartialEq)]
enum Op {
    Exists,
    Missing,
    Equals(String),
    NotEquals(String),
    In(Vec<String>),
    NotIn(Vec<String>),
    Compare(Ordering, f64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ordering {
    Less,
    LessOrEqual,
    Greater,
    GreaterOrEqual,
}

/// A path into a resource.
#[derive(Debug, Clone, PartialEq)]
pub struct Path(Vec<Step>);

#[derive(Debug, Clone, PartialEq)]
enum Step {
    Field(String),
    Index(usize),
    Select { field: String, value: String },
}

impl Path {
    /// `text` as a path, or why it is not one.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text.is_empty() {
            return Err("an empty path".into());
        }
        let mut steps = Vec::new();
        for part in split_outside(text, '.') {
            let (name, mut rest) = match part.find('[') {
                Some(i) => (&part[..i], &part[i..]),
                None => (part, ""),
            };
            if name.is_empty() && (steps.is_empty() || rest.is_empty()) {
                return Err(format!("{text:?} has an empty name"));
            }
            if !name.is_empty() {
                steps.push(Step::Field(name.to_string()));
            }
            while let Some(inner) = rest.strip_prefix('[') {
                let end = inner
                    .find(']')
                    .ok_or_else(|| format!("{text:?} has a '[' without its ']'"))?;
                let (selector, after) = (&inner[..end], &inner[end + 1..]);
                steps.push(match selector.split_once('=') {
                    Some((field, value)) if !field.trim().is_empty() => Step::Select {
                        field: field.trim().to_string(),
                        value: unquote(value.trim()).to_string(),
                    },
                    Some(_) => return Err(format!("{text:?}: a selector names no field")),
                    None => Step::Index(selector.trim().parse().map_err(|_| {
                        format!("{text:?}: [{selector}] is neither an index nor a selector (field=value)")
                    })?),
                });
                rest = after;
            }
            if !rest.is_empty() {
                return Err(format!("{text:?}: {rest:?} follows a ']'"));
            }
        }
        Ok(Self(steps))
    }

    /// What the path names in `resource`, if anything.
    pub fn get<'a>(&self, resource: &'a Value) -> Option<&'a Value> {
        let mut at = resource;
        for step in &self.0 {
            at = match step {
                Step::Field(name) => at.get(name)?,
                Step::Index(i) => at.get(*i)?,
                Step::Select { field, value } => at
                    .as_array()?
                    .iter()
                    .find(|item| item.get(field).is_some_and(|v| same(v, value)))?,
            };
        }
        Some(at).filter(|v| !v.is_null())
    }
}

/// A value written in a condition, without the quotes it may have.
fn unquote(text: &str) -> &str {
    for q in ['"', '\''] {
        if let Some(inner) = text.strip_prefix(q).and_then(|t| t.strip_suffix(q)) {
            return inner;
        }
    }
    text
}

/// Whether the resource's `v` reads as the condition's `text`.
fn same(v: &Value, text: &str) -> bool {
    match v {
        Value::String(s) => s == text,
        Value::Bool(b) => text.eq_ignore_ascii_case(if *b { "true" } else { "false" }),
        Value::Number(n) => {
            n.to_string() == text
                || matches!((n.as_f64(), text.parse::<f64>()), (Some(a), Ok(b)) if a == b)
        }
        _ => false,
    }
}

impl Condition {
    /// `text` as a condition, or an error naming what is wrong.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut requirements = Vec::new();
        for part in split_outside(text, ',') {
            let part = part.trim();
            if part.is_empty() {
                return Err(format!("{text:?} has an empty requirement"));
            }
            requirements.push(requirement(part)?);
        }
        Ok(Self {
            text: text.trim().to_string(),
            requirements,
        })
    }

    /// Whether every requirement holds of `resource`.
    pub fn holds(&self, resource: &Value) -> bool {
        self.requirements.iter().all(|r| r.holds(resource))
    }
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// `text` cut at its `at`s outside parentheses and brackets.
fn split_outside(text: &str, at: char) -> Vec<&str> {
    let (mut parts, mut depth, mut start) = (Vec::new(), 0i32, 0);
    for (i, c) in text.char_indices() {
        match c {
            '(' | '[' => depth += 1,
            ')' | ']' => depth -= 1,
            c if c == at && depth == 0 => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

/// One requirement: `path op value`, `path in (a, b)`, `path`, `!path`.
fn requirement(text: &str) -> Result<Requirement, String> {
    if let Some(path) = text.strip_prefix('!') {
        return Ok(Requirement {
            path: Path::parse(path)?,
            op: Op::Missing,
        });
    }
    // The first operator after the path (whose brackets may hold `=`), the longest where
    // two start at one place.
    let ops = [" notin ", " in ", "==", "!=", ">=", "<=", "=", ">", "<"];
    let path_end = text.rfind(']').map_or(0, |i| i + 1);
    let found = ops
        .iter()
        .filter_map(|op| text[path_end..].find(op).map(|i| (i + path_end, *op)))
        .min_by_key(|(i, op)| (*i, usize::MAX - op.len()));
    let Some((i, op)) = found else {
        return Ok(Requirement {
            path: Path::parse(text)?,
            op: Op::Exists,
        });
    };
    if let Some(word) = [" notin ", " in "].into_iter().find(|w| *w == op) {
        let list = text[i + word.len()..].trim();
        let inner = list
            .strip_prefix('(')
            .and_then(|l| l.strip_suffix(')'))
            .ok_or_else(|| {
                format!(
                    "{text:?}: the values of `{}` go in parentheses",
                    word.trim()
                )
            })?;
        let values = inner
            .split(',')
            .map(|v| unquote(v.trim()).to_string())
            .collect();
        let path = Path::parse(&text[..i])?;
        let op = if word == " notin " {
            Op::NotIn(values)
        } else {
            Op::In(values)
        };
        return Ok(Requirement { path, op });
    }
    let path = Path::parse(&text[..i])?;
    let value = unquote(text[i + op.len()..].trim()).to_string();
    if value.is_empty() {
        return Err(format!("{text:?}: no value after `{op}`"));
    }
    let number = || {
        value
            .parse::<f64>()
            .map_err(|_| format!("{text:?}: `{op}` compares numbers, and {value:?} is not one"))
    };
    let op = match op {
        "==" | "=" => Op::Equals(value),
        "!=" => Op::NotEquals(value),
        ">" => Op::Compare(Ordering::Greater, number()?),
        ">=" => Op::Compare(Ordering::GreaterOrEqual, number()?),
        "<" => Op::Compare(Ordering::Less, number()?),
        _ => Op::Compare(Ordering::LessOrEqual, number()?),
    };
    Ok(Requirement { path, op })
}

impl Requirement {
    fn holds(&self, resource: &Value) -> bool {
        let got = self.path.get(resource);
        match (&self.op, got) {
            (Op::Exists, got) => got.is_some(),
            (Op::Missing, got) => got.is_none(),
            (Op::Equals(v), Some(got)) => same(got, v),
            (Op::NotEquals(v), got) => !got.is_some_and(|g| same(g, v)),
            (Op::In(vs), Some(got)) => vs.iter().any(|v| same(got, v)),
            (Op::NotIn(vs), got) => !got.is_some_and(|g| vs.iter().any(|v| same(g, v))),
            (Op::Compare(order, n), Some(got)) => {
                let Some(x) = got.as_f64().or_else(|| got.as_str()?.parse().ok()) else {
                    return false;
                };
                match order {
                    Ordering::Less => x < *n,
                    Ordering::LessOrEqual => x <= *n,
                    Ordering::Greater => x > *n,
                    Ordering::GreaterOrEqual => x >= *n,
                }
            }
            (_, None) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn job(conditions: Value) -> Value {
        json!({"status": {"succeeded": 1, "active": 0, "conditions": conditions,
                          "applicationState": {"state": "FAILED"}}})
    }

    #[test]
    fn argo_style_requirements_hold_as_argo_reads_them() {
        let r = job(json!([{"type": "Complete", "status": "True", "reason": "Done"}]));
        let holds = |c: &str| Condition::parse(c).unwrap().holds(&r);
        assert!(holds("status.succeeded > 0"));
        assert!(!holds("status.succeeded > 1"));
        assert!(holds("status.succeeded >= 1, status.active == 0"));
        assert!(holds("status.conditions[type=Complete].status == True"));
        assert!(holds(
            "status.conditions[type=\"Complete\"].status = \"True\""
        ));
        assert!(!holds("status.conditions[type=Failed].status == True"));
        assert!(holds("status.conditions[0].reason == Done"));
        assert!(holds(
            "status.applicationState.state in (FAILED, SUBMISSION_FAILED)"
        ));
        assert!(!holds(
            "status.applicationState.state notin (FAILED,SUBMISSION_FAILED)"
        ));
        assert!(holds("status.applicationState.state != COMPLETED"));
        assert!(holds("status.conditions"));
        assert!(holds("!status.completionTime"));
        let named = json!({"status": {"items": [{"name": "a.b", "phase": "done in time"}]}});
        assert!(
            Condition::parse("status.items[name=a.b].phase == done in time")
                .unwrap()
                .holds(&named)
        );
        assert!(!holds("status.completionTime"));
        // A missing field satisfies only the negative requirements.
        assert!(!holds("status.failed > 0"));
        assert!(holds("status.failed != 1"));
    }

    #[test]
    fn booleans_and_numbers_read_either_way() {
        let r = json!({"status": {"done": true, "count": 3, "text": "3"}});
        let holds = |c: &str| Condition::parse(c).unwrap().holds(&r);
        assert!(holds("status.done == True") && holds("status.done == true"));
        assert!(holds("status.count == 3") && holds("status.count == 3.0"));
        assert!(
            holds("status.text > 2"),
            "a number written as text compares as one"
        );
    }

    #[test]
    fn bad_conditions_are_named() {
        let err = |c: &str| Condition::parse(c).unwrap_err();
        assert!(err("status.a > x").contains("is not one"));
        assert!(err("status.a in FAILED").contains("parentheses"));
        assert!(err("status.a ==").contains("no value"));
        assert!(err("status.a, ").contains("empty requirement"));
        assert!(err("status.conditions[type=Complete.status == True").contains("without its ']'"));
        assert!(err("status.conditions[x] == 1").contains("neither an index"));
        assert!(err("status..a == 1").contains("empty name"));
        assert!(err("status.a > 1 in (2)").contains("is not one"));
    }
}
