//! Opening tether: connect to the configured database, migrate it, and build the services.

use std::sync::Arc;

use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::db::Db;
use crate::engine::{Engine, KeyNamespace, NamespaceSource, Providers};
use crate::jobs::JobStore;
use crate::maintenance::Sweeper;
use crate::state::TaskState;
use crate::Error;

/// The services a command or the server works with.
#[derive(Debug, Clone)]
pub struct App {
    /// The checked configuration.
    pub config: Config,
    /// The database connection pool.
    pub db: Db,
    /// The task-state store.
    pub state: TaskState,
    /// The resumption engine (jobs, providers, leases).
    pub engine: Engine,
    /// Where every "now" comes from (token expiry, job history, the API's records).
    pub clock: Arc<dyn Clock>,
}

impl App {
    /// The GC sweeper of this app's config: expired task state, then finished jobs past
    /// `jobs.retention`, `batch_size` (default `gc.batch_size`) per statement.
    pub fn sweeper(&self, batch_size: Option<u32>) -> Sweeper {
        Sweeper::new(
            self.state.clone(),
            self.config.gc.schedule.clone(),
            batch_size.unwrap_or(self.config.gc.batch_size),
        )
        .with_job_history(self.engine.jobs().clone(), self.config.jobs.retention)
    }

    /// Connects to the configured database, applies pending migrations, and builds the services
    /// on the system clock.
    pub async fn open(config: Config) -> Result<Self, Error> {
        Self::open_with_clock(config, Arc::new(SystemClock)).await
    }

    /// As [`App::open`], with a given clock (tests move time by hand).
    pub async fn open_with_clock(config: Config, clock: Arc<dyn Clock>) -> Result<Self, Error> {
        let db = Db::connect(&config.database.url, &config.database.pool).await?;
        db.migrate().await?;
        let state = TaskState::new(db.clone(), clock.clone(), config.state.clone());
        let providers = Providers::from_config(&config.providers)
            .map_err(|e| Error::Engine(e.into()))?
            .with_events(config.events.values().flat_map(|e| e.accounts.clone()));
        let key_namespace = match &config.jobs.key_namespace {
            Some(value) => KeyNamespace {
                value: value.clone(),
                source: NamespaceSource::Config,
            },
            None => KeyNamespace {
                value: crate::db::settings::key_namespace(&db).await?,
                source: NamespaceSource::Database,
            },
        };
        let engine = Engine::new(
            JobStore::new(db.clone()),
            state.clone(),
            providers,
            config.supervisor.clone(),
            clock.clone(),
            key_namespace,
        );
        // Lease times are on the database's clock from the first one on.
        engine.sync_clock().await.map_err(Error::Engine)?;
        Ok(Self {
            config,
            db,
            state,
            engine,
            clock,
        })
    }
}
