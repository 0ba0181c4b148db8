//! The shape of the code, checked: the top-level modules of `src/` import each other without a
//! circle, only the database layer (`src/db/`) holds SQL, and only the clock reads the system
//! time. Read from the source text (comments and tests left out), so a new edge or statement
//! fails here with the file that brought it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Every `.rs` file under `dir`.
fn sources(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(sources(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out.sort();
    out
}

/// The file's code: comments removed, and everything from its `#[cfg(test)]` module on.
fn code(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    let text = match text.find("#[cfg(test)]\nmod tests") {
        Some(i) => &text[..i],
        None => &text[..],
    };
    text.lines()
        .map(|l| match l.trim_start().starts_with("//") {
            true => "",
            false => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// The top-level module a file belongs to (`src/db/jobs.rs` -> `db`).
fn module_of(path: &Path) -> String {
    let rel = path.strip_prefix(src()).unwrap();
    let first = rel
        .components()
        .next()
        .unwrap()
        .as_os_str()
        .to_string_lossy();
    first.trim_end_matches(".rs").to_string()
}

fn relative(path: &Path) -> String {
    path.strip_prefix(src())
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

#[test]
fn top_level_modules_import_each_other_without_a_circle() {
    // Module -> the modules it names (`crate::x`), with a file that does, for the message.
    let mut edges: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for path in sources(&src()) {
        let from = module_of(&path);
        if from == "lib" || from == "main" {
            continue;
        }
        let code = code(&path);
        for (i, _) in code.match_indices("crate::") {
            let to: String = code[i + 7..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !to.is_empty() && to != from && to.chars().next().unwrap().is_lowercase() {
                edges
                    .entry(from.clone())
                    .or_default()
                    .entry(to)
                    .or_insert_with(|| relative(&path));
            }
        }
    }
    // Depth-first search for a back edge; report the circle it closes.
    fn visit(
        m: &str,
        edges: &BTreeMap<String, BTreeMap<String, String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|p| p == m) {
            let mut circle = path[at..].to_vec();
            circle.push(m.to_string());
            return Some(circle);
        }
        if done.contains(m) {
            return None;
        }
        path.push(m.to_string());
        for to in edges.get(m).into_iter().flat_map(|e| e.keys()) {
            if let Some(circle) = visit(to, edges, path, done) {
                return Some(circle);
            }
        }
        path.pop();
        done.insert(m.to_string());
        None
    }
    let mut done = BTreeSet::new();
    for m in edges.keys() {
        if let Some(circle) = visit(m, &edges, &mut Vec::new(), &mut done) {
            let hops: Vec<String> = circle
                .windows(2)
                .map(|w| format!("{} -> {} ({})", w[0], w[1], edges[&w[0]][&w[1]]))
                .collect();
            panic!(
                "modules import each other in a circle:\n  {}",
                hops.join("\n  ")
            );
        }
    }
}

#[test]
fn only_the_database_layer_holds_sql() {
    let db = src().join("db");
    let mut found = Vec::new();
    for path in sources(&src()) {
        if path.starts_with(&db) {
            continue;
        }
        for (n, line) in code(&path).lines().enumerate() {
            if ["SELECT ", "UPDATE ", "INSERT ", "DELETE FROM"]
                .iter()
                .any(|kw| line.contains(kw))
            {
                found.push(format!("{}:{}: {}", relative(&path), n + 1, line.trim()));
            }
        }
    }
    assert!(
        found.is_empty(),
        "SQL outside src/db:\n{}",
        found.join("\n")
    );
}

#[test]
fn only_the_clock_reads_the_system_time() {
    let mut found = Vec::new();
    for path in sources(&src()) {
        if relative(&path) == "clock.rs" {
            continue;
        }
        for (n, line) in code(&path).lines().enumerate() {
            if line.contains("Utc::now()") || line.contains("SystemTime::now()") {
                found.push(format!("{}:{}: {}", relative(&path), n + 1, line.trim()));
            }
        }
    }
    assert!(
        found.is_empty(),
        "the system time read outside src/clock.rs:\n{}",
        found.join("\n")
    );
}
