//! The migrations against the model, their bookkeeping, and the store's connection settings
//! and failure modes.

use std::time::Duration;

use crm_core::model::EntityKind;
use crm_core::testkit::setup::{bootstrap, named};
use crm_core::{ErrorKind, Storage};
use crm_store_postgres::schema::table;
use crm_store_postgres::testing::{TestDatabase, texts};
use crm_store_postgres::{PgOptions, PgStore};
use sqlx::Row;

fn run(f: impl std::future::Future<Output = ()>) {
    crm_core::testkit::run(f)
}

#[test]
fn migrated_schema_has_a_column_and_an_index_for_every_field_and_index_of_the_model() {
    run(async {
        let db = TestDatabase::create().await;
        let store = db.store().await;
        let pool = store.pool();
        for kind in EntityKind::ALL {
            let t = table(kind);
            let cols: Vec<String> = texts(
                pool,
                "SELECT column_name::text FROM information_schema.columns WHERE table_name = $1",
                Some(t),
            )
            .await;
            for base in ["workspace_id", "id", "version", "deleted", "data"] {
                assert!(cols.iter().any(|c| c == base), "{t}.{base}");
            }
            for f in kind.fields() {
                let col = if f.multi {
                    format!("m_{}", f.name)
                } else {
                    format!("k_{}", f.name)
                };
                assert!(cols.contains(&col), "{t} lacks {col} for field {}", f.name);
            }
            assert_eq!(
                cols.iter().any(|c| c == "words") && cols.iter().any(|c| c == "points"),
                kind.searchable(),
                "{t}: search columns exactly on the searchable kinds"
            );
            let defs: Vec<String> = texts(
                pool,
                "SELECT indexdef FROM pg_indexes WHERE tablename = $1",
                Some(t),
            )
            .await;
            for index in kind.indexes() {
                let multi = index
                    .iter()
                    .any(|f| kind.fields().iter().any(|s| s.name == *f && s.multi));
                let wanted = if multi {
                    // Served by the GIN index on the members plus the sort field's own index.
                    let m = index
                        .iter()
                        .find(|f| kind.fields().iter().any(|s| s.name == **f && s.multi));
                    format!("USING gin (m_{})", m.unwrap())
                } else {
                    let keys: Vec<String> = index.iter().map(|f| format!("k_{f}")).collect();
                    format!("(workspace_id, {}, id)", keys.join(", "))
                };
                assert!(
                    defs.iter().any(|d| d.contains(&wanted)),
                    "{t}: no index {wanted} in {defs:#?}"
                );
            }
            if kind.searchable() {
                assert!(defs.iter().any(|d| d.contains("gin (words)")));
            }
        }
        // The task list's own paths (the task API's indexes).
        let task: Vec<String> = texts(
            pool,
            "SELECT indexdef FROM pg_indexes WHERE tablename = 'crm_task'",
            None,
        )
        .await;
        for wanted in [
            "(workspace_id, k_completed, k_due_date, id)",
            "(workspace_id, k_owner_id, k_completed, k_due_date, id)",
            "(workspace_id, k_owner_id, k_created_at, id)",
        ] {
            assert!(task.iter().any(|d| d.contains(wanted)), "{wanted}");
        }
    });
}

/// Hosts spawn these on multi-threaded runtimes: their futures must be `Send`.
#[test]
fn connecting_and_test_databases_are_send() {
    fn send<T: Send>(_: &T) {}
    let connect = PgStore::connect(PgOptions::new("postgres://localhost/x"));
    send(&connect);
    let create = TestDatabase::create();
    send(&create);
    drop((connect, create));
}

#[test]
fn migrations_are_recorded_idempotent_and_safe_to_run_concurrently() {
    run(async {
        let db = TestDatabase::create().await;
        // Six instances start at once on an empty database, each on a task (and pool) of
        // its own. sqlx's migrator takes a database-wide advisory lock before it even creates
        // `_sqlx_migrations`, so one applies the migrations and the others wait, then find
        // them applied: every connect succeeds (a second application would fail on the
        // tables that already exist, or on the version's primary key).
        let opts = db.options();
        let starting: Vec<_> = (0..6)
            .map(|_| tokio::spawn(PgStore::connect(opts.clone())))
            .collect();
        let mut stores = Vec::new();
        for s in starting {
            stores.push(s.await.unwrap().unwrap());
        }
        let a = &stores[0];
        a.migrate().await.unwrap();
        let applied: Vec<(i64, bool)> =
            sqlx::query("SELECT version, success FROM _sqlx_migrations ORDER BY version")
                .fetch_all(a.pool())
                .await
                .unwrap()
                .iter()
                .map(|r| (r.get(0), r.get(1)))
                .collect();
        let expected: Vec<(i64, bool)> = crm_store_postgres::migrate::MIGRATIONS
            .iter()
            .map(|(v, _, _)| (*v, true))
            .collect();
        assert_eq!(applied, expected);
    });
}

#[test]
fn a_database_from_a_newer_release_is_refused() {
    run(async {
        let db = TestDatabase::create().await;
        let store = db.store().await;
        sqlx::query(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
             VALUES (9999, 'from the future', true, '\\x00', 0)",
        )
        .execute(store.pool())
        .await
        .unwrap();
        let e = store.migrate().await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::StorageFailure);
        let e = PgStore::connect(db.options()).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::StorageFailure);
    });
}

#[test]
fn without_migrate_on_connect_the_schema_is_left_alone() {
    run(async {
        let db = TestDatabase::create().await;
        let store = PgStore::connect(db.options().migrate_on_connect(false))
            .await
            .unwrap();
        let tables: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM information_schema.tables WHERE table_name LIKE 'crm_%'",
        )
        .fetch_one(store.pool())
        .await
        .unwrap();
        assert_eq!(tables, 0);
        store.migrate().await.unwrap();
        store.ping().await.unwrap();
    });
}

#[test]
fn unreachable_database_and_bad_urls_are_coded_and_never_echo_the_url() {
    run(async {
        let secret = "s3cr3t-pw";
        let opts = PgOptions::new(format!("postgres://crm:{secret}@127.0.0.1:1/crm"))
            .acquire_timeout(Duration::from_millis(500));
        assert!(!format!("{opts:?}").contains(secret));
        let e = PgStore::connect(opts).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::StorageUnavailable);
        assert!(!format!("{e} {e:?}").contains(secret), "{e:?}");

        let e = PgStore::connect(PgOptions::new(format!(
            "postgres://x:{secret}@localhost:notaport/db"
        )))
        .await
        .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::StorageFailure);
        assert!(!format!("{e} {e:?}").contains(secret), "{e:?}");
    });
}

#[test]
fn a_statement_past_the_statement_timeout_is_busy_and_changes_nothing() {
    run(async {
        use crm_core::{Crm, CrmConfig};
        let db = TestDatabase::create().await;
        let store = PgStore::connect(
            db.options()
                .statement_timeout(Some(Duration::from_millis(300))),
        )
        .await
        .unwrap();
        let crm = Crm::new(std::sync::Arc::new(store.clone()), CrmConfig::default());
        let (_, actor) = bootstrap(&crm, "Timeouts", named("admin@t.test", "A", "B")).await;
        // Another session holds the user's row lock longer than the statement timeout.
        let blocker = db.store().await;
        let mut tx = blocker.pool().begin().await.unwrap();
        sqlx::query("SELECT 1 FROM crm_user WHERE id = $1 FOR UPDATE")
            .bind(actor.user_id().uuid())
            .execute(&mut *tx)
            .await
            .unwrap();
        let e = crm
            .users()
            .update_profile(
                &actor,
                actor.user_id(),
                1,
                crm_core::model::UserPatch {
                    first_name: Some("Changed".into()),
                    ..Default::default()
                },
            )
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Busy, "{e:?}");
        tx.rollback().await.unwrap();
        let user = crm.users().get(&actor, actor.user_id()).await.unwrap();
        assert_eq!((user.first_name.as_str(), user.version), ("A", 1));
    });
}
