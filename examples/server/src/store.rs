//! Opening the store the settings name: PostgreSQL when a database URL is given, else the
//! embedded redb file `crm.redb` in the data directory.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crm_core::Storage;
use crm_store_postgres::{PgOptions, PgStore};
use crm_store_redb::{RedbOptions, RedbStore};

use crate::BoxError;
use crate::cli::StoreArgs;

/// The open store.
#[derive(Clone)]
pub enum OpenStore {
    /// The embedded store.
    Redb(RedbStore),
    /// PostgreSQL (boxed: its options make it much larger than the redb handle).
    Postgres(Box<PgStore>),
}

impl std::fmt::Debug for OpenStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl OpenStore {
    /// Opens the store of `args`: connects to PostgreSQL (applying the migrations) with the
    /// TLS mode [`crate::dbtls::effective`] decides for `local` mode (and logs), or opens
    /// (creating if needed) the redb file in the data directory.
    ///
    /// # Errors
    /// An unreadable `--database-ca`, a database that is unreachable or refuses the URL or
    /// the TLS handshake, or a data directory or file that cannot be created or opened (e.g.
    /// another process holds it).
    pub async fn open(args: &StoreArgs, local: bool) -> Result<OpenStore, BoxError> {
        match &args.database_url {
            Some(url) => {
                let ca = args.database_ca();
                if let Some(ca) = &ca {
                    crate::dbtls::check_ca(ca)?;
                }
                let tls = crate::dbtls::effective(url, local, ca.as_deref())?;
                tracing::info!(
                    reason = tls.reason,
                    "PostgreSQL connection TLS: sslmode={}",
                    tls.mode
                );
                let url = &tls.url;
                let statement_timeout = (args.db_statement_timeout_secs > 0)
                    .then(|| Duration::from_secs(args.db_statement_timeout_secs));
                let options = PgOptions::new(url.clone())
                    .max_connections(args.db_pool_size.max(1))
                    .acquire_timeout(Duration::from_secs(args.db_acquire_timeout_secs.max(1)))
                    .statement_timeout(statement_timeout)
                    .application_name("crm-server");
                let store = PgStore::connect(options)
                    .await
                    .map_err(|e| format!("cannot connect to PostgreSQL: {}", crate::chain(&e)))?;
                Ok(OpenStore::Postgres(Box::new(store)))
            }
            None => {
                create_private_dir(&args.data_dir)?;
                let path = args.data_dir.join("crm.redb");
                let options = RedbOptions {
                    cache_size: Some(args.redb_cache_mb.max(1) * 1024 * 1024),
                    ..RedbOptions::default()
                };
                let store = RedbStore::open_with(&path, options)
                    .map_err(|e| format!("cannot open {}: {}", path.display(), crate::chain(&e)))?;
                Ok(OpenStore::Redb(store))
            }
        }
    }

    /// The store as the engine takes it.
    pub fn storage(&self) -> Arc<dyn Storage> {
        match self {
            OpenStore::Redb(s) => Arc::new(s.clone()),
            OpenStore::Postgres(s) => Arc::new(PgStore::clone(s)),
        }
    }

    /// `"redb"` or `"postgres"`.
    pub fn name(&self) -> &'static str {
        match self {
            OpenStore::Redb(_) => "redb",
            OpenStore::Postgres(_) => "postgres",
        }
    }

    /// Closes the store: redb commits every queued write, then releases the file;
    /// PostgreSQL's pool closes its connections.
    ///
    /// # Errors
    /// redb's writer ended abnormally.
    pub async fn close(&self) -> Result<(), BoxError> {
        match self {
            OpenStore::Redb(s) => s.close().await.map_err(Into::into),
            OpenStore::Postgres(s) => {
                s.close().await;
                Ok(())
            }
        }
    }
}

/// Creates `dir` (and its parents) if missing; a new directory is owner-only (0700).
///
/// # Errors
/// The directory cannot be created.
pub fn create_private_dir(dir: &Path) -> Result<(), BoxError> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
        .create(dir)
        .map_err(|e| format!("cannot create the data directory {}: {e}", dir.display()).into())
}
