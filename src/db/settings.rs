//! `tether_settings`: values of this database that every process sharing it reads, by name.
//!
//! Today one: `key_namespace`, made at random by the migration that created the table (see
//! `migrations/*/20261206000001_key_namespace.sql`).

use super::{Db, DbError};

/// The database's own key namespace (the one its first migration made).
pub async fn key_namespace(db: &Db) -> Result<String, DbError> {
    let value: Option<String> =
        sqlx::query_scalar("SELECT value FROM tether_settings WHERE name = $1")
            .bind("key_namespace")
            .fetch_optional(&mut *db.acquire().await?)
            .await?;
    // The migration inserts it; a row deleted by hand is reported, never replaced by one made
    // up on the spot (that would change every new key).
    value.ok_or_else(|| DbError::Migrate {
        url: db.url().to_string(),
        reason: "the table tether_settings has no `key_namespace` row (its migration made one; \
                 was it deleted?): set `jobs.key_namespace` in the configuration, or insert \
                 the row again"
            .into(),
    })
}
