//! Invalidation signals across instances: two stores (two pools, as two instances of the
//! host) on one database. The caches' TTLs are set to an hour, so a change made through one
//! instance can only be seen by the other's caches through the signal. Then the listener's
//! connection is killed with `pg_terminate_backend`: it reconnects by itself, tells the
//! caches to start over, and signals flow again.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crm_core::identity::{Identity, IdentityConfig, LoginRequest, Secret, TokenResponse};
use crm_core::model::{ClientInfo, Role, Workspace};
use crm_core::storage::{Invalidation, InvalidationSink};
use crm_core::testkit::identity_suite::CollectingDelivery;
use crm_core::testkit::setup::{email, fast_passwords, with_password};
use crm_core::{Actor, Crm, CrmConfig, ErrorKind, Storage};
use crm_store_postgres::PgStore;
use crm_store_postgres::signal::LISTENER_APPLICATION_NAME;
use crm_store_postgres::testing::TestDatabase;

const HOUR: Duration = Duration::from_secs(3600);
/// How long a test waits for something that must happen (not a latency assertion: with
/// hour-long TTLs, only a signal can make it happen at all).
const PATIENCE: Duration = Duration::from_secs(20);

fn run(f: impl std::future::Future<Output = ()>) {
    crm_core::testkit::run(f);
}

fn identity(store: &PgStore) -> Identity {
    let crm = Crm::new(
        Arc::new(store.clone()),
        CrmConfig {
            actor_cache_ttl: HOUR,
            ..CrmConfig::default()
        },
    );
    let mut config = IdentityConfig::new(Secret::new(
        b"signal-test-secret-0123456789-abcdef".to_vec(),
    ));
    config.revocation_cache_ttl = HOUR;
    config.password = fast_passwords(2, 64);
    Identity::new(crm, config, Arc::new(CollectingDelivery::default())).unwrap()
}

/// Signs up the installation's first workspace, "Acme", through `id`, its admin
/// `admin@acme.test` with `password`: the workspace, the admin's tokens and the admin.
async fn sign_up(id: &Identity, password: &str) -> (Workspace, TokenResponse, Actor) {
    let (ws, tokens) = id
        .sign_up_first(
            "Acme",
            email("admin@acme.test"),
            password,
            ClientInfo::default(),
        )
        .await
        .unwrap();
    let admin = id.crm().actor(ws.id, tokens.user.id).await.unwrap();
    (ws, tokens, admin)
}

/// Signs in through `id` (a new session); its tokens.
async fn login(
    id: &Identity,
    ws: crm_core::id::WorkspaceId,
    email: &str,
    password: &str,
) -> TokenResponse {
    id.login(LoginRequest {
        workspace_id: ws,
        email: email.into(),
        password: password.into(),
        client: ClientInfo::default(),
    })
    .await
    .unwrap()
}

/// Polls `check` until it holds, panicking with `what` after [`PATIENCE`].
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + PATIENCE;
    while !check().await {
        assert!(Instant::now() < deadline, "never happened: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn refused(id: &Identity, token: &str) -> bool {
    id.authenticate(token).await.is_err()
}

#[test]
fn revocations_and_user_changes_reach_the_other_instance_through_the_signal() {
    run(async {
        let db = TestDatabase::create().await;
        let (store_a, store_b) = (db.store().await, db.store().await);
        let (a, b) = (identity(&store_a), identity(&store_b));
        let (ws, _, admin) = sign_up(&a, "admin pw").await;
        let sales = with_password(&a, &admin, "sales@acme.test", Role::Sales, "sales pw").await;

        // Logout through A: B refuses the access token (its cache said "active").
        let t = login(&a, ws.id, "sales@acme.test", "sales pw").await;
        assert!(b.authenticate(&t.access_token).await.is_ok());
        let actor = a.crm().actor(ws.id, sales.id).await.unwrap();
        a.logout(&actor, t.session_id).await.unwrap();
        eventually("logout seen by B", || refused(&b, &t.access_token)).await;
        assert_eq!(
            b.verify_access_token(&t.access_token)
                .await
                .unwrap_err()
                .kind(),
            ErrorKind::SessionRevoked
        );

        // Log out everywhere through A.
        let t1 = login(&a, ws.id, "sales@acme.test", "sales pw").await;
        let t2 = login(&a, ws.id, "sales@acme.test", "sales pw").await;
        for t in [&t1, &t2] {
            assert!(b.authenticate(&t.access_token).await.is_ok());
        }
        a.logout_all(&actor).await.unwrap();
        eventually("logout-all seen by B", || async {
            refused(&b, &t1.access_token).await && refused(&b, &t2.access_token).await
        })
        .await;

        // A password change through A ends the other sessions on B too, but not the
        // session it was made from.
        let keep = login(&a, ws.id, "sales@acme.test", "sales pw").await;
        let other = login(&a, ws.id, "sales@acme.test", "sales pw").await;
        for t in [&keep, &other] {
            assert!(b.authenticate(&t.access_token).await.is_ok());
        }
        a.change_password(&actor, Some(keep.session_id), "sales pw", "new pw")
            .await
            .unwrap();
        eventually("password change seen by B", || {
            refused(&b, &other.access_token)
        })
        .await;
        assert!(b.authenticate(&keep.access_token).await.is_ok());

        // A role change through A: B's cached actor is forgotten.
        let (before, _) = b.authenticate(&keep.access_token).await.unwrap();
        assert_eq!(before.role(), Role::Sales);
        let current = a.crm().users().get(&admin, sales.id).await.unwrap();
        let promoted = a
            .crm()
            .users()
            .set_role(&admin, sales.id, current.version, Role::Manager)
            .await
            .unwrap();
        eventually("role change seen by B", || async {
            b.authenticate(&keep.access_token)
                .await
                .is_ok_and(|(actor, _)| actor.role() == Role::Manager)
        })
        .await;

        // Disabling through A: B refuses the user.
        a.crm()
            .users()
            .set_disabled(&admin, sales.id, promoted.version, true)
            .await
            .unwrap();
        eventually("disabling seen by B", || refused(&b, &keep.access_token)).await;
    });
}

/// Records every signal a store delivers.
#[derive(Default)]
struct Recorder(Mutex<Vec<Invalidation>>);

impl InvalidationSink for Recorder {
    fn invalidate(&self, signal: &Invalidation) {
        self.0.lock().unwrap().push(*signal);
    }
}

impl Recorder {
    fn count(&self, pred: impl Fn(&Invalidation) -> bool) -> usize {
        self.0.lock().unwrap().iter().filter(|s| pred(s)).count()
    }
}

/// The backend pids of `db`'s invalidation listeners that are listening.
async fn listeners(admin: &PgStore, db: &TestDatabase) -> Vec<i32> {
    sqlx::query_scalar(
        "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND application_name = $2 \
         AND query LIKE 'LISTEN%'",
    )
    .bind(db.name())
    .bind(LISTENER_APPLICATION_NAME)
    .fetch_all(admin.pool())
    .await
    .unwrap()
}

#[test]
fn a_killed_listener_reconnects_resets_the_caches_and_hears_signals_again() {
    run(async {
        let db = TestDatabase::create().await;
        let (store_a, store_b) = (db.store().await, db.store().await);
        let recorder = Arc::new(Recorder::default());
        let sink: Arc<dyn InvalidationSink> = recorder.clone();
        let second: Arc<dyn InvalidationSink> = Arc::new(Recorder::default());
        assert!(store_b.subscribe_invalidations(Arc::downgrade(&sink)));
        assert!(store_b.subscribe_invalidations(Arc::downgrade(&second)));
        eventually("B listens", || async {
            !listeners(&store_a, &db).await.is_empty()
        })
        .await;
        let b_listener = listeners(&store_a, &db).await;
        assert_eq!(
            b_listener.len(),
            1,
            "one listener per store, however many sinks"
        );
        let b_listener = b_listener[0];
        eventually("the first connection reset the caches", || async {
            recorder.count(|s| *s == Invalidation::All) >= 1
        })
        .await;

        // The engine's own caches on A subscribe too: A gets a listener of its own, which
        // must outlive B's reconnection untouched.
        let a = identity(&store_a);
        eventually("A listens too", || async {
            listeners(&store_a, &db).await.len() == 2
        })
        .await;
        let a_listener = listeners(&store_a, &db).await;
        assert!(a_listener.contains(&b_listener));
        let a_listener = *a_listener.iter().find(|p| **p != b_listener).unwrap();
        let (ws, tokens, admin) = sign_up(&a, "pw").await;
        let session = |id| {
            move |s: &Invalidation| {
                *s == Invalidation::Session {
                    workspace: ws.id,
                    id,
                }
            }
        };
        a.logout(&admin, tokens.session_id).await.unwrap();
        eventually("the logout's signal", || async {
            recorder.count(session(tokens.session_id.uuid())) == 1
        })
        .await;
        let resets = recorder.count(|s| *s == Invalidation::All);

        // Kill B's listener's backend.
        let killed: bool = sqlx::query_scalar("SELECT pg_terminate_backend($1)")
            .bind(b_listener)
            .fetch_one(store_a.pool())
            .await
            .unwrap();
        assert!(killed);
        eventually("a new listener for B, A's untouched", || async {
            let now = listeners(&store_a, &db).await;
            now.len() == 2 && now.contains(&a_listener) && !now.contains(&b_listener)
        })
        .await;
        eventually("the caches were told to start over", || async {
            recorder.count(|s| *s == Invalidation::All) > resets
        })
        .await;

        // Signals flow again.
        let t = login(&a, ws.id, "admin@acme.test", "pw").await;
        a.logout(&admin, t.session_id).await.unwrap();
        eventually("a signal after the reconnect", || async {
            recorder.count(session(t.session_id.uuid())) == 1
        })
        .await;
        // A refresh-token rotation (the session stays active) signals nothing: notifications
        // arrive in commit order, so once a later logout's signal is in, the rotation's
        // would be too.
        let t = login(&a, ws.id, "admin@acme.test", "pw").await;
        a.refresh(t.refresh_token.expose(), &ClientInfo::default())
            .await
            .unwrap();
        let marker = login(&a, ws.id, "admin@acme.test", "pw").await;
        a.logout(&admin, marker.session_id).await.unwrap();
        eventually("the marker logout's signal", || async {
            recorder.count(session(marker.session_id.uuid())) == 1
        })
        .await;
        assert_eq!(recorder.count(session(t.session_id.uuid())), 0);
    });
}
