//! `tether token ...`: admin token hashes for the config; task tokens signed locally (and
//! recorded, like those the API signs), listed and revoked.

use std::io::Read;

use clap::Subcommand;

use crate::api::auth::{hash_token, TokenKeys};
use crate::api::tokens::{check_providers, claims_for, TokenRegistry, TokenRequest};
use crate::app::App;
use crate::Error;

/// The `token` subcommands.
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Read an admin token on stdin and print the SHA-256 to put in api.admin_token_sha256.
    Hash,
    /// Sign a task token with the signing key (api.signing_kid's, or api.signing_key), as
    /// POST /v1/tokens does; it is recorded, to be listed and revoked.
    Issue {
        /// The DAG the token is bound to.
        #[arg(long)]
        dag: String,
        /// Bind to one run.
        #[arg(long)]
        run: Option<String>,
        /// Bind to one task.
        #[arg(long)]
        task: Option<String>,
        /// Bind to one map index.
        #[arg(long, allow_negative_numbers = true)]
        map_index: Option<i64>,
        /// An asset whose state the token may use (repeat for more).
        #[arg(long = "asset")]
        assets: Vec<String>,
        /// A provider account ([providers.NAME]) the token may ensure jobs on (repeat for
        /// more; none given: every configured one).
        #[arg(long = "provider")]
        providers: Vec<String>,
        /// Lifetime in seconds.
        #[arg(long)]
        ttl_seconds: Option<u64>,
    },
    /// List the live task tokens (neither expired nor revoked); never the tokens themselves.
    List,
    /// Revoke a task token by id: every supervisor sharing the database refuses it from the
    /// next request on.
    Revoke {
        /// The token's id (`tether token list`, or the `id` POST /v1/tokens answered).
        id: String,
    },
}

pub(super) fn hash() -> Result<(), Error> {
    let mut token = String::new();
    std::io::stdin()
        .read_to_string(&mut token)
        .map_err(|source| Error::Io {
            context: "reading the token from stdin".into(),
            source,
        })?;
    let token = token.trim();
    if token.len() < 16 {
        return Err(Error::Usage(
            "an admin token should be at least 16 characters of random text".into(),
        ));
    }
    println!("{}", hash_token(token));
    Ok(())
}

pub(super) async fn run(app: &App, cmd: &TokenCommand, json: bool) -> Result<(), Error> {
    let registry = TokenRegistry::new(app.db.clone());
    let now = app.clock.now().timestamp_millis();
    let (dag, run, task, map_index, assets, providers, ttl_seconds) = match cmd {
        TokenCommand::Hash => return hash(),
        TokenCommand::List => {
            let live = registry.live(now).await?;
            if json {
                super::print_json(&live);
            }
            for t in live.iter().filter(|_| !json) {
                println!(
                    "{}  dag {} run {} task {} map {}  assets {:?}  kid {}  expires {}  by {}",
                    t.id,
                    t.dag_id,
                    t.run_id.as_deref().unwrap_or("*"),
                    t.task_id.as_deref().unwrap_or("*"),
                    t.map_index.map_or("*".to_string(), |m| m.to_string()),
                    t.assets,
                    t.kid,
                    t.expires_at
                        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    t.issued_by
                );
            }
            return Ok(());
        }
        TokenCommand::Revoke { id } => {
            let Some(info) = registry.revoke(id, now).await? else {
                return Err(Error::NotFound(format!("no task token with id {id:?}")));
            };
            if json {
                super::print_json(&info);
            } else {
                println!("token {id} revoked; every supervisor sharing the database refuses it");
            }
            return Ok(());
        }
        TokenCommand::Issue {
            dag,
            run,
            task,
            map_index,
            assets,
            providers,
            ttl_seconds,
        } => (dag, run, task, map_index, assets, providers, ttl_seconds),
    };
    let Some(keys) = TokenKeys::from_config(&app.config.api.signing_keys) else {
        return Err(Error::Usage(
            "api.signing_key (or TETHER_API_SIGNING_KEY, or api.signing_keys) is not set: tokens signed now would not verify on the server".into(),
        ));
    };
    let request = TokenRequest {
        dag_id: dag.clone(),
        run_id: run.clone(),
        task_id: task.clone(),
        map_index: *map_index,
        assets: assets.clone(),
        providers: (!providers.is_empty()).then(|| providers.clone()),
        ttl_seconds: *ttl_seconds,
    };
    let claims = claims_for(
        request,
        app.config.api.task_token_ttl.as_secs(),
        app.clock.now().timestamp(),
    )
    .and_then(|c| check_providers(&c, &app.config).map(|()| c))
    .map_err(|e| Error::Usage(e.message().to_string()))?;
    let (token, kid) = keys.sign(&claims);
    registry
        .record(&crate::api::tokens::new_token(&claims, &kid, "cli", now))
        .await?;
    println!("{token}");
    Ok(())
}
