//! Embedded, forward-only schema migrations.
//!
//! The SQL files under `migrations/` are compiled into the crate. [`MIGRATIONS`] lists them;
//! they are applied in order by sqlx's migrator, which records each applied version (with a
//! checksum of its SQL) in the `_sqlx_migrations` table and holds a PostgreSQL advisory lock
//! while it runs, so several instances starting together apply each migration exactly once.
//! Applying them again is a no-op. A database carrying a version this build does not know
//! (written by a newer release) is refused rather than used.

use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;

use sqlx::error::BoxDynError;
use sqlx::migrate::{Migration, MigrationSource, MigrationType, Migrator};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

/// The embedded migrations: `(version, description, SQL)`, in order. Never edit one that has
/// shipped: add the next.
pub const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "records, unique values, audit log, indexes and search",
        include_str!("../migrations/0001_init.sql"),
    ),
    (
        2,
        "shared rate-limit state",
        include_str!("../migrations/0002_rate_limit.sql"),
    ),
    (
        3,
        "the change feed",
        include_str!("../migrations/0003_change_feed.sql"),
    ),
    (
        4,
        "the dashboard: maintained tallies, hot-contact and activity indexes",
        include_str!("../migrations/0004_dashboard.sql"),
    ),
    (
        5,
        "the access log and security events",
        include_str!("../migrations/0005_security.sql"),
    ),
    (
        6,
        "data protection: audit by actor, recently viewed by record, consents",
        include_str!("../migrations/0006_privacy.sql"),
    ),
];

#[derive(Debug)]
struct Embedded;

impl MigrationSource<'static> for Embedded {
    fn resolve(
        self,
    ) -> Pin<Box<dyn Future<Output = Result<Vec<Migration>, BoxDynError>> + Send + 'static>> {
        Box::pin(async {
            Ok(MIGRATIONS
                .iter()
                .map(|(version, description, sql)| {
                    Migration::new(
                        *version,
                        Cow::Borrowed(*description),
                        MigrationType::Simple,
                        Cow::Borrowed(*sql),
                        false,
                    )
                })
                .collect())
        })
    }
}

/// Applies every embedded migration not yet applied, on a connection of its own.
///
/// The migrator holds a session-level advisory lock while it works and does not release it
/// when it refuses a database; a dedicated one-connection pool, closed afterwards whatever
/// the outcome, makes sure the lock never outlives the call, so other instances are never
/// left waiting.
///
/// # Errors
/// The migrator's error: a migration failed (its transaction is rolled back), the database
/// has a migration this build does not know, or an applied migration's SQL changed.
pub(crate) async fn run(connect: &PgConnectOptions) -> Result<(), sqlx::migrate::MigrateError> {
    let migrator = Migrator::new(Embedded).await?;
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .connect_with(connect.clone())
        .await?;
    let outcome = migrator.run(&pool).await;
    pool.close().await;
    outcome
}
