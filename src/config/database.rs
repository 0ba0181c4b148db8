//! `[database]`: where the database is (SQLite in the data directory by default) and the
//! pool's size and timeouts.

use std::path::Path;

use serde::Deserialize;

use super::{parse_duration, Problems};
use crate::db::{DatabaseUrl, PoolSettings};

/// Where the database is and how to reach it.
#[derive(Debug, Clone)]
pub struct DatabaseConfig {
    /// The database URL (password masked when printed).
    pub url: DatabaseUrl,
    /// Pool sizing and timeouts.
    pub pool: PoolSettings,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDatabase {
    url: Option<String>,
    max_connections: Option<u32>,
    connect_timeout: Option<String>,
    idle_timeout: Option<String>,
}

impl RawDatabase {
    /// The section, checked; SQLite in `data_dir` unless `url` says otherwise.
    pub(super) fn build(self, data_dir: &Path, problems: &mut Problems) -> DatabaseConfig {
        let mut url = DatabaseUrl::sqlite_file(&data_dir.join("tether.db"));
        if let Some(raw) = &self.url {
            problems.check(
                "database.url",
                DatabaseUrl::parse(raw)
                    .map(|u| url = u)
                    .map_err(|e| e.to_string()),
            );
        }
        let mut pool = PoolSettings::default();
        if let Some(n) = self.max_connections {
            problems.check(
                "database.max_connections",
                if n == 0 {
                    Err("must be at least 1".into())
                } else {
                    pool.max_connections = n;
                    Ok(())
                },
            );
        }
        if let Some(t) = &self.connect_timeout {
            problems.check(
                "database.connect_timeout",
                parse_duration(t).map(|d| pool.acquire_timeout = d),
            );
        }
        if let Some(t) = &self.idle_timeout {
            problems.check(
                "database.idle_timeout",
                parse_duration(t).map(|d| pool.idle_timeout = d),
            );
        }

        DatabaseConfig { url, pool }
    }
}
