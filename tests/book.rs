//! The manual (issue 33): `README.md` and the mdBook in `docs/` (pages in `docs/src/`, their
//! order in `docs/src/SUMMARY.md`). mdBook checks no links itself; this test fails on
//!
//! - a broken internal link of the README or a page: a relative file link whose file does not
//!   exist (or, from a page, lies outside the book), or a `#anchor` that names no heading of
//!   its target (the heading ids of mdBook and GitHub);
//! - a page that `SUMMARY.md` does not list, or an entry of it without its file;
//! - a `tether` command (in a code block, or an inline span that starts with `tether `) whose
//!   subcommand or nested subcommand the built binary's `--help` does not name, or a
//!   `tether sim` kind it does not list;
//! - a kind of the registry that no provider page, or the README, names;
//! - a configuration reference that is not the code's: a field missing on either side, or a
//!   default other than the code's;
//! - a README of 12 KB or more.
//!
//! Each check returns its problems, so that the tests at the end can show it failing on a
//! broken input.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const README_LIMIT: usize = 12 * 1024;

/// A Markdown file of the manual: its path relative to the repository, and its text.
struct Page {
    path: PathBuf,
    text: String,
}

fn page(path: &str) -> Page {
    let text = std::fs::read_to_string(Path::new(ROOT).join(path))
        .unwrap_or_else(|e| panic!("{path}: {e}"));
    Page {
        path: PathBuf::from(path),
        text,
    }
}

/// `README.md` and every `.md` file under `docs/src`.
fn manual() -> Vec<Page> {
    let mut pages = vec![page("README.md")];
    for path in markdown_files(&Path::new(ROOT).join("docs/src")) {
        let rel = path
            .strip_prefix(ROOT)
            .unwrap()
            .to_str()
            .unwrap()
            .to_string();
        pages.push(page(&rel));
    }
    pages
}

fn markdown_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(read) = std::fs::read_dir(dir) else {
        return out;
    };
    let mut entries: Vec<_> = read.map(|e| e.unwrap().path()).collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            out.extend(markdown_files(&path));
        } else if path.extension().is_some_and(|e| e == "md") {
            out.push(path);
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Markdown, as far as the checks need it.

/// A fenced code block: its info string's first word, and its lines.
struct Block {
    lang: String,
    lines: Vec<String>,
}

/// What a Markdown text is made of: its prose (code blocks blanked out, so that line numbers
/// stay), and its fenced code blocks.
struct Parsed {
    prose: String,
    blocks: Vec<Block>,
}

fn parse(text: &str) -> Parsed {
    let mut prose = String::new();
    let mut blocks = Vec::new();
    let mut open: Option<(String, Block)> = None;
    for line in text.lines() {
        let trimmed = line.trim_start();
        let fence: String = trimmed
            .chars()
            .take_while(|&c| c == '`' || c == '~')
            .collect();
        match &mut open {
            Some((opening, block)) => {
                if fence.len() >= opening.len()
                    && fence.starts_with(&opening[..1])
                    && trimmed[fence.len()..].trim().is_empty()
                {
                    blocks.push(std::mem::replace(
                        block,
                        Block {
                            lang: String::new(),
                            lines: Vec::new(),
                        },
                    ));
                    open = None;
                } else {
                    block.lines.push(line.to_string());
                }
                prose.push('\n');
            }
            None if fence.len() >= 3 => {
                let lang = trimmed[fence.len()..]
                    .split(|c: char| c.is_whitespace() || c == ',')
                    .next()
                    .unwrap_or("")
                    .to_lowercase();
                open = Some((
                    fence,
                    Block {
                        lang,
                        lines: Vec::new(),
                    },
                ));
                prose.push('\n');
            }
            None => {
                prose.push_str(line);
                prose.push('\n');
            }
        }
    }
    Parsed { prose, blocks }
}

/// The prose with its code spans blanked out, and the spans' texts.
fn code_spans(prose: &str) -> (String, Vec<String>) {
    let chars: Vec<char> = prose.chars().collect();
    let mut out = String::with_capacity(prose.len());
    let mut spans = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] != '`' {
            out.push(chars[i]);
            i += 1;
            continue;
        }
        let run = chars[i..].iter().take_while(|&&c| c == '`').count();
        // The closing run: the same number of backticks, not part of a longer run.
        let mut j = i + run;
        let mut close = None;
        while j < chars.len() {
            if chars[j] == '`' {
                let n = chars[j..].iter().take_while(|&&c| c == '`').count();
                if n == run {
                    close = Some(j);
                    break;
                }
                j += n;
            } else {
                j += 1;
            }
        }
        match close {
            Some(j) => {
                let text: String = chars[i + run..j].iter().collect();
                spans.push(text.replace('\n', " ").trim().to_string());
                for c in &chars[i..j + run] {
                    out.push(if *c == '\n' { '\n' } else { ' ' });
                }
                i = j + run;
            }
            None => {
                for _ in 0..run {
                    out.push('`');
                }
                i += run;
            }
        }
    }
    (out, spans)
}

/// The targets of the inline links and images of prose whose code spans are blanked out.
fn link_targets(text: &str) -> Vec<String> {
    let mut targets = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("](") {
        let after = &rest[at + 2..];
        let mut depth = 1;
        let mut end = None;
        for (k, c) in after.char_indices() {
            match c {
                '(' => depth += 1,
                ')' => {
                    depth -= 1;
                    if depth == 0 {
                        end = Some(k);
                        break;
                    }
                }
                '\n' => break,
                _ => {}
            }
        }
        if let Some(end) = end {
            let inner = after[..end].trim();
            let target = inner.split_whitespace().next().unwrap_or("");
            targets.push(target.trim_matches(|c| c == '<' || c == '>').to_string());
            rest = &after[end..];
        } else {
            rest = after;
        }
    }
    targets
}

/// The ids of a page's headings, as mdBook (`normalize_id`) and GitHub make them: the heading's
/// text lowercased, letters, digits, `_` and `-` kept, whitespace made `-`, the rest dropped;
/// a repeated id gets `-1`, `-2`, ...
fn heading_ids(text: &str) -> BTreeSet<String> {
    let parsed = parse(text);
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut ids = BTreeSet::new();
    for line in parsed.prose.lines() {
        let hashes = line.chars().take_while(|&c| c == '#').count();
        if hashes == 0 || hashes > 6 || !line[hashes..].starts_with(' ') {
            continue;
        }
        let id = slug(line[hashes..].trim().trim_end_matches('#').trim());
        let n = seen.entry(id.clone()).or_insert(0);
        ids.insert(if *n == 0 {
            id.clone()
        } else {
            format!("{id}-{n}")
        });
        *n += 1;
    }
    ids
}

fn slug(heading: &str) -> String {
    // The text a reader sees: link targets dropped, `[text](url)` as `text`.
    let mut visible = String::new();
    let mut rest = heading;
    while let Some(open) = rest.find('[') {
        match rest[open..].find("](") {
            Some(mid) => {
                let mid = open + mid;
                let close = rest[mid..]
                    .find(')')
                    .map(|c| mid + c)
                    .unwrap_or(rest.len() - 1);
                visible.push_str(&rest[..open]);
                visible.push_str(&rest[open + 1..mid]);
                rest = &rest[close + 1..];
            }
            None => break,
        }
    }
    visible.push_str(rest);
    visible
        .chars()
        .filter_map(|c| {
            if c.is_alphanumeric() || c == '_' || c == '-' {
                Some(c.to_lowercase().next().unwrap())
            } else if c.is_whitespace() {
                Some('-')
            } else {
                None
            }
        })
        .collect()
}

/// `a/b/../c` as `a/c`.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// The checks. Each takes the repository's root and the pages, and returns its problems.

fn check_links(root: &Path, pages: &[Page]) -> Vec<String> {
    let mut problems = Vec::new();
    let book = Path::new("docs/src");
    for page in pages {
        let (text, _) = code_spans(&parse(&page.text).prose);
        let dir = page.path.parent().unwrap_or(Path::new(""));
        for target in link_targets(&text) {
            let name = page.path.display();
            if target.is_empty() {
                problems.push(format!("{name}: a link with no target"));
                continue;
            }
            if target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            let (file, anchor) = match target.split_once('#') {
                Some((f, a)) => (f, Some(a)),
                None => (target.as_str(), None),
            };
            let resolved = if file.is_empty() {
                page.path.clone()
            } else {
                normalize(&dir.join(file))
            };
            if !root.join(&resolved).exists() {
                problems.push(format!(
                    "{name}: link {target:?}: {} does not exist",
                    resolved.display()
                ));
                continue;
            }
            if page.path.starts_with(book) && !resolved.starts_with(book) {
                problems.push(format!(
                    "{name}: link {target:?} leaves the book ({}): the built book would not have it",
                    resolved.display()
                ));
            }
            if let Some(anchor) = anchor {
                let target_text = std::fs::read_to_string(root.join(&resolved)).unwrap_or_default();
                if resolved.extension().is_none_or(|e| e != "md")
                    || !heading_ids(&target_text).contains(anchor)
                {
                    problems.push(format!(
                        "{name}: link {target:?}: {} has no heading #{anchor}",
                        resolved.display()
                    ));
                }
            }
        }
    }
    problems
}

fn check_summary(root: &Path) -> Vec<String> {
    let src = root.join("docs/src");
    let summary = std::fs::read_to_string(src.join("SUMMARY.md")).unwrap_or_default();
    let (text, _) = code_spans(&parse(&summary).prose);
    let mut listed = BTreeSet::new();
    let mut problems = Vec::new();
    for target in link_targets(&text) {
        if target.is_empty() {
            problems.push("docs/src/SUMMARY.md: an entry without a file (a draft chapter)".into());
            continue;
        }
        let path = normalize(Path::new(target.split('#').next().unwrap()));
        if !src.join(&path).is_file() {
            problems.push(format!(
                "docs/src/SUMMARY.md lists {}, which does not exist",
                path.display()
            ));
        }
        listed.insert(path);
    }
    for file in markdown_files(&src) {
        let rel = file.strip_prefix(&src).unwrap().to_path_buf();
        if rel != Path::new("SUMMARY.md") && !listed.contains(&rel) {
            problems.push(format!(
                "docs/src/{} is not listed in docs/src/SUMMARY.md",
                rel.display()
            ));
        }
    }
    problems
}

/// What the built binary's help names: its subcommands, the nested subcommands of each that
/// has some, and the kinds `tether sim` takes.
struct Cli {
    commands: BTreeMap<String, BTreeSet<String>>,
    sim_kinds: BTreeSet<String>,
}

fn help(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_tether"))
        .args(args)
        .arg("--help")
        .env_remove("TETHER_CONFIG")
        .output()
        .unwrap();
    assert!(out.status.success(), "tether {args:?} --help failed");
    String::from_utf8(out.stdout).unwrap()
}

/// The names in a help text's `Commands:` section.
fn commands_of(help: &str) -> BTreeSet<String> {
    help.lines()
        .skip_while(|l| l.trim() != "Commands:")
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter(|l| l.starts_with("  ") && !l.starts_with("      "))
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect()
}

fn cli() -> Cli {
    let top = commands_of(&help(&[]));
    assert!(top.contains("run") && top.contains("jobs"), "{top:?}");
    let commands = top
        .iter()
        .map(|c| {
            // `tether help` is clap's; it takes the name of another command, not --help.
            let nested = if c == "help" {
                BTreeSet::new()
            } else {
                commands_of(&help(&[c]))
            };
            (c.clone(), nested)
        })
        .collect();
    let sim = help(&["sim"]);
    let start = sim
        .find("[possible values:")
        .expect("tether sim --help lists the kinds");
    let end = start + sim[start..].find(']').unwrap();
    let sim_kinds = sim[start + "[possible values:".len()..end]
        .split(',')
        .map(|k| k.trim().to_string())
        .collect();
    Cli {
        commands,
        sim_kinds,
    }
}

/// Words, quoted strings kept whole, with `|`, `&&`, `;`, `&`, `(`, `)`, `$(` and backquotes
/// as tokens of their own.
fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut chars = line.chars().peekable();
    let flush = |word: &mut String, words: &mut Vec<String>| {
        if !word.is_empty() {
            words.push(std::mem::take(word));
        }
    };
    while let Some(c) = chars.next() {
        match c {
            '\'' | '"' => {
                word.push(c);
                for d in chars.by_ref() {
                    word.push(d);
                    if d == c {
                        break;
                    }
                }
            }
            c if c.is_whitespace() => flush(&mut word, &mut words),
            '$' if chars.peek() == Some(&'(') => {
                flush(&mut word, &mut words);
                chars.next();
                words.push("$(".into());
            }
            '|' | '&' | ';' | '(' | ')' | '`' => {
                flush(&mut word, &mut words);
                let mut sep = c.to_string();
                if (c == '|' || c == '&') && chars.peek() == Some(&c) {
                    sep.push(chars.next().unwrap());
                }
                words.push(sep);
            }
            c => word.push(c),
        }
    }
    flush(&mut word, &mut words);
    words
}

const SEPARATORS: &[&str] = &["|", "||", "&", "&&", ";", "(", ")", "$(", "`", "or:"];

/// A word a command stands for, not a placeholder such as `KIND` or `...`.
fn is_name(word: &str) -> bool {
    word.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && word
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// The `tether` commands of a shell line: the arguments after `tether` (or `.../tether`, or
/// `cargo run ... --` without `-p`/`--bin`), for each that stands where a command starts.
fn tether_commands(line: &str) -> Vec<Vec<String>> {
    let words = shell_words(line);
    let mut found = Vec::new();
    let mut i = 0;
    let mut at_start = true;
    while i < words.len() {
        let w = words[i].as_str();
        if SEPARATORS.contains(&w) {
            at_start = true;
            i += 1;
            continue;
        }
        if !at_start {
            i += 1;
            continue;
        }
        // Environment assignments and wrappers before the command.
        let is_assignment = w.split_once('=').is_some_and(|(name, _)| {
            !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        });
        if is_assignment || w == "time" || w == "exec" {
            i += 1;
            continue;
        }
        at_start = false;
        let end = words[i + 1..]
            .iter()
            .position(|w| SEPARATORS.contains(&w.as_str()))
            .map_or(words.len(), |p| i + 1 + p);
        let args = &words[i + 1..end];
        if w == "tether" || w.ends_with("/tether") {
            found.push(args.to_vec());
        } else if w == "cargo" && args.first().is_some_and(|a| a == "run") {
            if let Some(dash) = args.iter().position(|a| a == "--") {
                let own = &args[1..dash];
                let other_binary = own.iter().any(|a| {
                    ["-p", "--package", "--bin", "--example"].contains(&a.as_str())
                        || a.starts_with("--package=")
                        || a.starts_with("--bin=")
                });
                if !other_binary {
                    found.push(args[dash + 1..].to_vec());
                }
            }
        }
        i = end;
    }
    found
}

/// The problem with one `tether` command line's (sub)commands, if any.
fn check_command(cli: &Cli, args: &[String]) -> Option<String> {
    let mut rest = args.iter().map(String::as_str);
    let sub = loop {
        match rest.next() {
            None => return None,
            Some("-c" | "--config" | "--database-url" | "--log") => {
                rest.next();
            }
            Some("-h" | "--help" | "-V" | "--version") => return None,
            Some(a) if a.starts_with('-') || a.starts_with('[') => {}
            Some(a) => break a,
        }
    };
    if !is_name(sub) {
        return None;
    }
    let Some(nested) = cli.commands.get(sub) else {
        return Some(format!(
            "`tether {sub}`: tether --help names no such command ({})",
            cli.commands.keys().cloned().collect::<Vec<_>>().join(", ")
        ));
    };
    let next = rest.find(|a| !a.starts_with('-') && !a.starts_with('['));
    match next {
        Some(word) if !nested.is_empty() && is_name(word) && !nested.contains(word) => {
            Some(format!(
                "`tether {sub} {word}`: tether {sub} --help names no such command ({})",
                nested.iter().cloned().collect::<Vec<_>>().join(", ")
            ))
        }
        Some(kind) if sub == "sim" && is_name(kind) && !cli.sim_kinds.contains(kind) => {
            Some(format!(
                "`tether sim {kind}`: tether sim --help lists no such kind ({})",
                cli.sim_kinds.iter().cloned().collect::<Vec<_>>().join(", ")
            ))
        }
        _ => None,
    }
}

/// Code blocks whose lines are commands (a shell's, or unmarked).
const SHELL: &[&str] = &["", "sh", "bash", "shell", "console", "text"];

fn check_commands(cli: &Cli, pages: &[Page]) -> Vec<String> {
    let mut problems = Vec::new();
    let mut checked = 0;
    for page in pages {
        let parsed = parse(&page.text);
        let mut lines = Vec::new();
        for block in parsed
            .blocks
            .iter()
            .filter(|b| SHELL.contains(&b.lang.as_str()))
        {
            // A line ending in `\` goes on on the next.
            let mut joined = String::new();
            for line in &block.lines {
                match line.trim_end().strip_suffix('\\') {
                    Some(head) => {
                        joined.push_str(head);
                        joined.push(' ');
                    }
                    None => {
                        joined.push_str(line);
                        lines.push(std::mem::take(&mut joined));
                    }
                }
            }
            lines.push(joined);
        }
        let (_, spans) = code_spans(&parsed.prose);
        lines.extend(
            spans
                .into_iter()
                .filter(|s| s.starts_with("tether ") || s.starts_with("cargo run ")),
        );
        for line in lines {
            for args in tether_commands(&line) {
                checked += 1;
                if let Some(problem) = check_command(cli, &args) {
                    problems.push(format!("{}: {problem}", page.path.display()));
                }
            }
        }
    }
    assert!(
        checked > 0 || pages.is_empty(),
        "no tether command found at all"
    );
    eprintln!("{checked} tether commands checked");
    problems
}

fn check_kinds(root: &Path, kinds: &[&str]) -> Vec<String> {
    let dir = root.join("docs/src/providers");
    // The family pages: not the overview, and not the edge catalog, which is generated from
    // the registry and so names every kind whatever the pages say.
    let family: Vec<(PathBuf, Vec<String>)> = markdown_files(&dir)
        .into_iter()
        .filter(|p| !p.ends_with("index.md") && !p.ends_with("edges.md"))
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            (p, code_spans(&parse(&text).prose).1)
        })
        .collect();
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap_or_default();
    let readme_spans = code_spans(&parse(&readme).prose).1;
    let mut problems = Vec::new();
    for kind in kinds {
        if !family
            .iter()
            .any(|(_, spans)| spans.iter().any(|s| s == kind))
        {
            problems.push(format!(
                "kind `{kind}` of the registry: no provider page in docs/src/providers names it"
            ));
        }
        if !readme_spans.iter().any(|s| s == kind) {
            problems.push(format!(
                "kind `{kind}` of the registry: README.md does not name it"
            ));
        }
    }
    problems
}

fn check_readme_size(root: &Path) -> Vec<String> {
    let size = std::fs::metadata(root.join("README.md")).map_or(0, |m| m.len() as usize);
    if size >= README_LIMIT {
        vec![format!(
            "README.md is {size} bytes: it must stay under {README_LIMIT} (12 KB); move detail into the book"
        )]
    } else {
        Vec::new()
    }
}

// ---------------------------------------------------------------------------------------------
// The configuration reference against the code's defaults.

/// A duration as the reference writes it: whole days, else whole hours, else seconds.
fn duration(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 86400 && s.is_multiple_of(86400) {
        format!("`{}d`", s / 86400)
    } else if s >= 3600 && s.is_multiple_of(3600) {
        format!("`{}h`", s / 3600)
    } else {
        format!("`{s}s`")
    }
}

fn retention(r: &tether::state::Retention) -> String {
    match r {
        tether::state::Retention::Never => "`never`".into(),
        tether::state::Retention::For(d) => duration(*d),
    }
}

/// The fields a section of the file has, as serde names them when it refuses an unknown one:
/// `None` for a field that is not a section.
fn section_fields(section: Option<&str>) -> Option<BTreeSet<String>> {
    let probe = "zz_not_a_field";
    let text = match section {
        Some(s) => format!("[{s}]\n{probe} = 1\n"),
        None => format!("{probe} = 1\n"),
    };
    let message = match tether::config::Config::from_toml(&text, "probe") {
        Ok(_) => return None,
        Err(e) => e.to_string(),
    };
    let (_, expected) = message.split_once(&format!("unknown field `{probe}`, expected"))?;
    Some(
        expected
            .split('`')
            .skip(1)
            .step_by(2)
            .map(str::to_string)
            .collect(),
    )
}

/// Every field of the file but the provider accounts, with the default its reference must
/// state: `Some(cell)` rendered from the code's own defaults, `None` for a field whose default
/// is described rather than a value (the data folder, the URL built from it, keys).
fn code_defaults() -> BTreeMap<String, Option<String>> {
    let c = tether::config::Config::from_toml("", "<defaults>").expect("the defaults are valid");
    let mut rendered: BTreeMap<&str, String> = BTreeMap::new();
    let pool = &c.database.pool;
    rendered.insert("database.max_connections", pool.max_connections.to_string());
    rendered.insert("database.connect_timeout", duration(pool.acquire_timeout));
    rendered.insert("database.idle_timeout", duration(pool.idle_timeout));
    rendered.insert(
        "state.default_retention",
        retention(&c.state.default_retention),
    );
    rendered.insert("state.max_value_bytes", c.state.max_value_bytes.to_string());
    rendered.insert(
        "state.clear_on_success",
        c.state.clear_on_success.to_string(),
    );
    rendered.insert(
        "state.max_keys_per_scope",
        c.state.max_keys_per_scope.to_string(),
    );
    rendered.insert(
        "gc.schedule",
        format!("`{}`", tether::config::DEFAULT_GC_SCHEDULE),
    );
    rendered.insert("gc.batch_size", c.gc.batch_size.to_string());
    rendered.insert("jobs.retention", retention(&c.jobs.retention));
    let s = &c.supervisor;
    rendered.insert("supervisor.lease", duration(s.lease));
    rendered.insert("supervisor.claim_batch", s.claim_batch.to_string());
    rendered.insert(
        "supervisor.max_concurrent_polls",
        s.max_concurrent_polls.to_string(),
    );
    rendered.insert(
        "supervisor.on_spec_change",
        format!(
            "`{}`",
            serde_json::to_value(s.on_spec_change)
                .unwrap()
                .as_str()
                .unwrap()
        ),
    );
    rendered.insert("supervisor.shutdown_grace", duration(s.shutdown_grace));
    rendered.insert("supervisor.max_clock_skew", duration(s.max_clock_skew));
    let a = &c.api;
    rendered.insert("api.enabled", a.enabled.to_string());
    rendered.insert("api.listen", format!("`{}`", a.listen));
    assert!(a.admin_token_sha256.is_empty());
    rendered.insert("api.admin_token_sha256", "`[]`".into());
    rendered.insert("api.task_token_ttl", duration(a.task_token_ttl));
    rendered.insert("api.max_body_bytes", a.max_body_bytes.to_string());
    rendered.insert("api.max_wait", duration(a.max_wait));
    rendered.insert("api.max_waits", a.max_waits.to_string());
    rendered.insert("api.max_waits_per_token", a.max_waits_per_token.to_string());
    rendered.insert("api.header_read_timeout", duration(a.header_read_timeout));
    rendered.insert("api.body_read_timeout", duration(a.body_read_timeout));
    assert!(a.tls.is_none());
    rendered.insert("api.tls_cert", String::new());
    rendered.insert("api.tls_key", String::new());
    let described = [
        "data_dir",
        "database.url",
        "jobs.key_namespace",
        "api.signing_key",
        "api.signing_keys",
        "api.signing_kid",
    ];

    let mut fields = BTreeMap::new();
    for top in section_fields(None).expect("the file refuses unknown fields") {
        if top == "providers" || top == "events" {
            continue; // the accounts and event sources: tables of their own
        }
        let names: Vec<String> = match section_fields(Some(&top)) {
            Some(inner) => inner.iter().map(|f| format!("{top}.{f}")).collect(),
            None => vec![top.clone()],
        };
        for name in names {
            let default = match rendered.get(name.as_str()) {
                Some(cell) => Some(cell.clone()),
                None if described.contains(&name.as_str()) => None,
                None => panic!(
                    "{name}: a field of the file that tests/book.rs renders no default for: \
                     add it to code_defaults (and to the configuration reference)"
                ),
            };
            fields.insert(name, default);
        }
    }
    fields
}

/// The common fields of a provider account (`CommonSettings::KEYS`, the keys `take_from` takes:
/// a test in `tether-provider` holds the two together), with their defaults.
fn provider_defaults() -> BTreeMap<String, Option<String>> {
    let keys: BTreeSet<String> = tether_provider::CommonSettings::KEYS
        .iter()
        .map(|k| k.to_string())
        .collect();
    let d = tether_provider::CommonSettings::default();
    let mut rendered: BTreeMap<&str, String> = BTreeMap::new();
    rendered.insert("poll_initial", duration(d.poll.initial));
    rendered.insert("poll_max", duration(d.poll.max));
    rendered.insert("poll_multiplier", d.poll.multiplier.to_string());
    rendered.insert("rate_limit_per_second", d.rate_per_second.to_string());
    rendered.insert("rate_limit_burst", d.rate_burst.to_string());
    rendered.insert("unknown_after", d.unknown_after.to_string());
    rendered.insert("request_timeout", duration(d.request_timeout));
    rendered.insert("max_retries", d.max_retries.to_string());
    rendered.insert("coalesce", d.coalesce.to_string());
    assert!(d.sweep_every.is_none());
    rendered.insert("sweep_every", "unset: `poll_max`".into());
    rendered.insert("poll_max_with_events", duration(d.poll_max_with_events));
    // `take_from` starts from the kind's edge catalog for these two.
    rendered.insert("not_found_grace", "the kind's edge catalog".into());
    rendered.insert("forgotten_after", "the kind's edge catalog".into());
    rendered.insert(
        "on_forgotten",
        match d.on_forgotten {
            tether_provider::OnForgotten::OutcomeUnknown => "`outcome_unknown`".into(),
            tether_provider::OnForgotten::Resubmit => "`resubmit`".into(),
        },
    );
    let mut fields: BTreeMap<String, Option<String>> = BTreeMap::new();
    fields.insert("kind".into(), None); // the table's name: src/config/providers.rs
    for key in keys {
        let cell = rendered.get(key.as_str()).unwrap_or_else(|| {
            panic!("providers.NAME.{key}: a common field that tests/book.rs renders no default for")
        });
        fields.insert(key, Some(cell.clone()));
    }
    fields
}

/// The rows `| field | default | ... |` of the table that follows `after` in a page: each
/// field named in the first cell, with the second cell.
fn reference_rows(text: &str, after: &str) -> BTreeMap<String, String> {
    let start = text.find(after).unwrap_or(text.len());
    let mut rows = BTreeMap::new();
    let mut in_table = false;
    for line in text[start..].lines() {
        if line.starts_with("| field | default |") {
            in_table = true;
            continue;
        }
        if !in_table {
            continue;
        }
        if !line.starts_with('|') {
            break;
        }
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        if cells.len() < 4 || cells[1].starts_with("---") {
            continue;
        }
        let (_, names) = code_spans(cells[1]);
        for name in names {
            rows.insert(name, cells[2].to_string());
        }
    }
    rows
}

fn compare(
    what: &str,
    page: &BTreeMap<String, String>,
    code: &BTreeMap<String, Option<String>>,
) -> Vec<String> {
    let mut problems = Vec::new();
    for (field, default) in code {
        match (page.get(field), default) {
            (None, _) => problems.push(format!("{what}: `{field}` is missing")),
            (Some(cell), Some(want)) if cell != want => problems.push(format!(
                "{what}: `{field}` says its default is {cell:?}; the code's is {want:?}"
            )),
            _ => {}
        }
    }
    for field in page.keys() {
        if !code.contains_key(field) {
            problems.push(format!("{what}: `{field}` is not a field the code has"));
        }
    }
    problems
}

fn check_configuration(root: &Path) -> Vec<String> {
    let path = "docs/src/operating/configuration.md";
    let text = std::fs::read_to_string(root.join(path)).unwrap_or_default();
    let mut file = reference_rows(&text, "# Configuration");
    file.retain(|f, _| !f.starts_with("providers."));
    let accounts = reference_rows(&text, "## Provider accounts");
    let mut problems = compare(&format!("{path}, the file"), &file, &code_defaults());
    problems.extend(compare(
        &format!("{path}, provider accounts"),
        &accounts,
        &provider_defaults(),
    ));
    problems
}

// ---------------------------------------------------------------------------------------------

fn report(what: &str, problems: Vec<String>) {
    assert!(problems.is_empty(), "{what}:\n  {}", problems.join("\n  "));
}

#[test]
fn readme_is_under_12_kb() {
    report("README.md", check_readme_size(Path::new(ROOT)));
}

#[test]
fn internal_links_resolve() {
    report("broken links", check_links(Path::new(ROOT), &manual()));
}

#[test]
fn summary_lists_every_page() {
    report("docs/src/SUMMARY.md", check_summary(Path::new(ROOT)));
}

#[test]
fn commands_exist() {
    report("commands", check_commands(&cli(), &manual()));
}

#[test]
fn every_kind_is_documented() {
    let kinds = tether::registry::kinds();
    assert!(kinds.len() > 1);
    report("kinds", check_kinds(Path::new(ROOT), &kinds));
}

#[test]
fn configuration_reference_is_the_codes() {
    report(
        "configuration reference",
        check_configuration(Path::new(ROOT)),
    );
}

// The checks fail on broken input.

fn fake_book(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (path, text) in files {
        let path = dir.path().join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    dir
}

fn pages_of(root: &Path, paths: &[&str]) -> Vec<Page> {
    paths
        .iter()
        .map(|p| Page {
            path: PathBuf::from(p),
            text: std::fs::read_to_string(root.join(p)).unwrap(),
        })
        .collect()
}

#[test]
fn the_checks_fail_on_broken_input() {
    let book = fake_book(&[
        (
            "README.md",
            "[ok](docs/src/a.md#the-b-page) [gone](docs/src/nope.md) `[not](a link)`\n",
        ),
        (
            "docs/src/SUMMARY.md",
            "# Summary\n\n- [A](a.md)\n- [Missing](missing.md)\n",
        ),
        (
            "docs/src/a.md",
            "# The `b` page\n\n[x](#no-such-heading) [y](a.md#the-b-page) [z](../../x.md)\n",
        ),
        ("docs/src/unlisted.md", "# Unlisted\n"),
        ("x.md", "# Outside\n"),
    ]);
    let root = book.path();
    let links = check_links(root, &pages_of(root, &["README.md", "docs/src/a.md"]));
    assert_eq!(links.len(), 3, "{links:#?}");
    for bad in [
        "nope.md does not exist",
        "leaves the book",
        "no heading #no-such-heading",
    ] {
        assert!(links.iter().any(|p| p.contains(bad)), "{bad}: {links:#?}");
    }

    let summary = check_summary(root);
    assert_eq!(summary.len(), 2, "{summary:#?}");
    assert!(summary
        .iter()
        .any(|p| p.contains("missing.md, which does not exist")));
    assert!(summary
        .iter()
        .any(|p| p.contains("unlisted.md is not listed")));

    let cli = cli();
    let commands = Page {
        path: "c.md".into(),
        text: "```sh\ntether jobs list && tether jobs purge 3\necho x | tether --config c.toml nosuch\n\
               cargo run -q -- sim no-such-kind\ncargo run -q -p tether-soak -- --jobs 1\n```\n\
               Inline: `tether state get k --asset a`, `tether statee get`.\n"
            .into(),
    };
    let problems = check_commands(&cli, &[commands]);
    assert_eq!(problems.len(), 4, "{problems:#?}");
    for bad in [
        "jobs purge",
        "tether nosuch",
        "sim no-such-kind",
        "tether statee",
    ] {
        assert!(
            problems.iter().any(|p| p.contains(bad)),
            "{bad}: {problems:#?}"
        );
    }

    let kinds = check_kinds(root, &["databricks"]);
    assert_eq!(kinds.len(), 2, "{kinds:#?}");

    let big = fake_book(&[("README.md", &"x".repeat(README_LIMIT))]);
    assert_eq!(check_readme_size(big.path()).len(), 1);

    let reference = "# Configuration\n\n| field | default | meaning |\n|---|---|---|\n\
                     | `gc.batch_size` | 999 | wrong |\n| `gc.no_such` | 1 | none |\n";
    let page = reference_rows(reference, "# Configuration");
    let code = code_defaults();
    let problems = compare("c", &page, &code);
    assert!(problems
        .iter()
        .any(|p| p.contains("`gc.batch_size` says its default is \"999\"")));
    assert!(problems
        .iter()
        .any(|p| p.contains("`gc.no_such` is not a field")));
    assert!(problems
        .iter()
        .any(|p| p.contains("`supervisor.lease` is missing")));
}
