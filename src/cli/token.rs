//! `tether token ...`: admin token hashes for the config, and task tokens signed locally.

use std::io::Read;

use clap::Subcommand;

use crate::api::auth::{hash_token, TokenKeys};
use crate::api::ops::{claims_for, TokenRequest};
use crate::app::App;
use crate::Error;

/// The `token` subcommands.
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Read an admin token on stdin and print the SHA-256 to put in api.admin_token_sha256.
    Hash,
    /// Sign a task token with api.signing_key (the same as POST /v1/tokens).
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
        /// Lifetime in seconds.
        #[arg(long)]
        ttl_seconds: Option<u64>,
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

pub(super) fn run(app: &App, cmd: &TokenCommand) -> Result<(), Error> {
    let TokenCommand::Issue {
        dag,
        run,
        task,
        map_index,
        assets,
        ttl_seconds,
    } = cmd
    else {
        return hash();
    };
    let Some(key) = &app.config.api.signing_key else {
        return Err(Error::Usage(
            "api.signing_key (or TETHER_API_SIGNING_KEY) is not set: tokens signed now would not verify on the server".into(),
        ));
    };
    let request = TokenRequest {
        dag_id: dag.clone(),
        run_id: run.clone(),
        task_id: task.clone(),
        map_index: *map_index,
        assets: assets.clone(),
        ttl_seconds: *ttl_seconds,
    };
    let claims = claims_for(request, app.config.api.task_token_ttl.as_secs())
        .map_err(|e| Error::Usage(e.message().to_string()))?;
    println!("{}", TokenKeys::new(key.expose().as_bytes()).sign(&claims));
    Ok(())
}
