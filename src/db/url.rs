//! Database URLs: which backend a URL names, and how to print one without its password.

use std::fmt;

use url::Url;

/// The database engines tether can store its state in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite: the embedded default, one file, one supervisor process.
    Sqlite,
    /// PostgreSQL: shared by several supervisor processes.
    Postgres,
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        })
    }
}

/// A database URL whose password never reaches a log line or an error message.
///
/// `Display` and `Debug` print the URL with the password replaced by `******`; only
/// [`DatabaseUrl::expose`] gives the real one, to the driver.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl {
    raw: String,
    backend: Backend,
}

/// Why a database URL was refused.
#[derive(Debug, thiserror::Error)]
#[error("invalid database URL `{masked}`: {reason}")]
pub struct UrlError {
    masked: String,
    reason: String,
}

impl DatabaseUrl {
    /// Parses a URL of the form `sqlite://PATH`, `sqlite::memory:`, or `postgres://...`.
    pub fn parse(raw: &str) -> Result<Self, UrlError> {
        let fail = |reason: &str| UrlError {
            masked: mask(raw),
            reason: reason.to_string(),
        };
        let backend = if raw.starts_with("sqlite:") {
            Backend::Sqlite
        } else if raw.starts_with("postgres://") || raw.starts_with("postgresql://") {
            Backend::Postgres
        } else {
            return Err(fail(
                "the scheme must be sqlite: or postgres:// (for example sqlite://.tether/tether.db)",
            ));
        };
        match backend {
            Backend::Postgres => {
                let url = Url::parse(raw).map_err(|e| fail(&e.to_string()))?;
                if url.host_str().unwrap_or("").is_empty() {
                    return Err(fail("a PostgreSQL URL needs a host"));
                }
            }
            Backend::Sqlite => {
                let path = sqlite_path(raw);
                if path.is_empty() {
                    return Err(fail("a SQLite URL needs a file path"));
                }
            }
        }
        Ok(Self {
            raw: raw.to_string(),
            backend,
        })
    }

    /// A SQLite URL for a file path.
    pub fn sqlite_file(path: &std::path::Path) -> Self {
        Self {
            raw: format!("sqlite://{}", path.display()),
            backend: Backend::Sqlite,
        }
    }

    /// The backend this URL names.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The URL with its password, for the driver only.
    pub fn expose(&self) -> &str {
        &self.raw
    }

    /// For SQLite, the database file (None for an in-memory database).
    pub fn sqlite_file_path(&self) -> Option<std::path::PathBuf> {
        if self.backend != Backend::Sqlite {
            return None;
        }
        let path = sqlite_path(&self.raw);
        (path != ":memory:").then(|| std::path::PathBuf::from(path))
    }
}

/// The path part of a SQLite URL, without scheme and query.
fn sqlite_path(raw: &str) -> &str {
    let rest = raw
        .strip_prefix("sqlite://")
        .or_else(|| raw.strip_prefix("sqlite:"))
        .unwrap_or(raw);
    rest.split('?').next().unwrap_or("")
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&mask(&self.raw))
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatabaseUrl({})", mask(&self.raw))
    }
}

/// Replaces the password of a URL (and a `password=` query parameter) with `******`.
///
/// Works on strings that do not parse as URLs too, so that an error about a malformed URL does
/// not print its password either.
pub fn mask(raw: &str) -> String {
    let mut out = raw.to_string();
    if let Some(scheme_end) = out.find("://") {
        let auth_start = scheme_end + 3;
        let auth_end = out[auth_start..]
            .find(['/', '?', '#'])
            .map_or(out.len(), |i| auth_start + i);
        if let Some(at) = out[auth_start..auth_end].rfind('@') {
            let userinfo = &out[auth_start..auth_start + at];
            if let Some(colon) = userinfo.find(':') {
                let start = auth_start + colon + 1;
                out.replace_range(start..auth_start + at, "******");
            }
        }
    }
    if let Some(q) = out.find('?') {
        let (head, query) = out.split_at(q + 1);
        let query = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=******"),
                _ => pair.to_string(),
            })
            .collect::<Vec<_>>()
            .join("&");
        out = format!("{head}{query}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_password_in_userinfo_and_query() {
        assert_eq!(
            mask("postgres://bob:s3cret@db:5432/x"),
            "postgres://bob:******@db:5432/x"
        );
        assert_eq!(
            mask("postgres://db/x?user=bob&password=s3cret"),
            "postgres://db/x?user=bob&password=******"
        );
        assert_eq!(mask("postgres://bob@db/x"), "postgres://bob@db/x");
        assert_eq!(mask("sqlite://a.db"), "sqlite://a.db");
    }

    #[test]
    fn parse_refuses_unknown_scheme_without_leaking_password() {
        let err = DatabaseUrl::parse("mysql://u:pw@h/db")
            .unwrap_err()
            .to_string();
        assert!(err.contains("mysql://u:******@h/db"), "{err}");
        assert!(!err.contains("pw@"), "{err}");
    }

    #[test]
    fn display_masks() {
        let url = DatabaseUrl::parse("postgres://u:hunter2@localhost/db").unwrap();
        assert!(!format!("{url} {url:?}").contains("hunter2"));
        assert_eq!(url.backend(), Backend::Postgres);
        let url = DatabaseUrl::parse("sqlite://data/t.db?mode=rwc").unwrap();
        assert_eq!(
            url.sqlite_file_path().unwrap(),
            std::path::PathBuf::from("data/t.db")
        );
    }
}
