//! The two backends' schemas agree: after every migration, SQLite and PostgreSQL have the same
//! tables, the same columns in each (by name and nullability) and the same indexes (by table
//! and columns), apart from the differences listed here on purpose.

mod common;

use std::collections::BTreeSet;

use sqlx::Row as _;
use tether::db::{Db, PoolSettings};

use common::TestDb;

/// What differs on purpose, and why.
const SQLITE_ONLY_TABLES: &[&str] = &[
    // SQLite's change log for other processes' waiters; PostgreSQL uses NOTIFY instead
    // (migrations 20261202000003 and 20261201000002).
    "job_changes",
];

/// A schema, as sets of comparable lines.
#[derive(Debug, Default)]
struct Schema {
    tables: BTreeSet<String>,
    /// `table.column NULL|NOT NULL`
    columns: BTreeSet<String>,
    /// `table(col, col) [unique]`
    indexes: BTreeSet<String>,
}

async fn sqlite_schema(db: &Db) -> Schema {
    let mut schema = Schema::default();
    let tables = sqlx::query(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' \
         AND name <> '_sqlx_migrations'",
    )
    .fetch_all(db.pool())
    .await
    .unwrap();
    for t in tables {
        let table: String = t.get(0);
        if SQLITE_ONLY_TABLES.contains(&table.as_str()) {
            continue;
        }
        let columns = sqlx::query(&format!(
            "SELECT name, \"notnull\", pk FROM pragma_table_info('{table}')"
        ))
        .fetch_all(db.pool())
        .await
        .unwrap();
        for c in columns {
            let name: String = c.get(0);
            // A primary key is NOT NULL on PostgreSQL; SQLite's INTEGER PRIMARY KEY says 0.
            let not_null = c.get::<i64, _>(1) == 1 || c.get::<i64, _>(2) > 0;
            schema
                .columns
                .insert(format!("{table}.{name} {}", null_text(not_null)));
        }
        let indexes = sqlx::query(&format!(
            "SELECT name, \"unique\", origin FROM pragma_index_list('{table}')"
        ))
        .fetch_all(db.pool())
        .await
        .unwrap();
        for i in indexes {
            let name: String = i.get(0);
            let unique = i.get::<i64, _>(1) == 1;
            let origin: String = i.get(2);
            // Primary keys are compared as columns; SQLite lists some (origin `pk`).
            if origin == "pk" {
                continue;
            }
            let cols = sqlx::query(&format!("SELECT name FROM pragma_index_info('{name}')"))
                .fetch_all(db.pool())
                .await
                .unwrap()
                .iter()
                .map(|r| r.get::<String, _>(0))
                .collect::<Vec<_>>();
            schema.indexes.insert(index_text(&table, &cols, unique));
        }
        schema.tables.insert(table);
    }
    schema
}

async fn postgres_schema(db: &Db) -> Schema {
    let mut schema = Schema::default();
    let tables = sqlx::query(
        "SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'public' \
         AND table_type = 'BASE TABLE' AND table_name <> '_sqlx_migrations'",
    )
    .fetch_all(db.pool())
    .await
    .unwrap();
    for t in tables {
        let table: String = t.get(0);
        let columns = sqlx::query(
            "SELECT column_name::text, is_nullable::text FROM information_schema.columns \
             WHERE table_schema = 'public' AND table_name = $1",
        )
        .bind(&table)
        .fetch_all(db.pool())
        .await
        .unwrap();
        for c in columns {
            let name: String = c.get(0);
            let not_null = c.get::<String, _>(1) == "NO";
            schema
                .columns
                .insert(format!("{table}.{name} {}", null_text(not_null)));
        }
        // Every index but the primary key's, with its columns in order.
        let indexes = sqlx::query(
            "SELECT i.indisunique, array_to_string(array_agg(a.attname::text ORDER BY k.n), ',') \
             FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid \
             CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, n) \
             JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum \
             WHERE c.relname = $1 AND NOT i.indisprimary \
             GROUP BY i.indexrelid, i.indisunique",
        )
        .bind(&table)
        .fetch_all(db.pool())
        .await
        .unwrap();
        for i in indexes {
            let unique: bool = i.get(0);
            let cols: String = i.get(1);
            let cols: Vec<String> = cols.split(',').map(str::to_string).collect();
            schema.indexes.insert(index_text(&table, &cols, unique));
        }
        schema.tables.insert(table);
    }
    schema
}

fn null_text(not_null: bool) -> &'static str {
    if not_null {
        "NOT NULL"
    } else {
        "NULL"
    }
}

fn index_text(table: &str, cols: &[String], unique: bool) -> String {
    format!(
        "{table}({}){}",
        cols.join(", "),
        if unique { " unique" } else { "" }
    )
}

fn differences(what: &str, a: &BTreeSet<String>, b: &BTreeSet<String>) -> Vec<String> {
    let mut out: Vec<String> = a
        .difference(b)
        .map(|x| format!("{what} only on SQLite: {x}"))
        .collect();
    out.extend(
        b.difference(a)
            .map(|x| format!("{what} only on PostgreSQL: {x}")),
    );
    out
}

#[tokio::test]
async fn both_backends_have_the_same_schema() {
    let Some(pg) = TestDb::postgres("both_backends_have_the_same_schema").await else {
        return;
    };
    let lite = TestDb::sqlite().await;
    let settings = PoolSettings::default();
    let (lite_db, pg_db) = (
        Db::connect(&lite.url, &settings).await.unwrap(),
        Db::connect(&pg.url, &settings).await.unwrap(),
    );
    lite_db.migrate().await.unwrap();
    pg_db.migrate().await.unwrap();
    let (a, b) = (sqlite_schema(&lite_db).await, postgres_schema(&pg_db).await);
    assert!(
        a.tables.contains("jobs") && a.tables.contains("task_state"),
        "{a:?}"
    );
    let mut wrong = differences("table", &a.tables, &b.tables);
    wrong.extend(differences("column", &a.columns, &b.columns));
    wrong.extend(differences("index", &a.indexes, &b.indexes));
    assert!(
        wrong.is_empty(),
        "the schemas differ:\n{}",
        wrong.join("\n")
    );
}
