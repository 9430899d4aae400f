//! The conformance suite every [`Storage`] backend must pass (feature `testkit`).
//!
//! Generic async tests over any storage, instantiated in a backend's test crate with one
//! line. Each test gets a fresh store from the backend's fixture function:
//!
//! ```text
//! async fn fixture() -> crm_core::testkit::Fixture {
//!     let dir = tempfile::tempdir().unwrap();
//!     let store = MyStore::open(dir.path().join("crm.db")).unwrap();
//!     crm_core::testkit::Fixture::with_guard(std::sync::Arc::new(store), dir)
//! }
//! crm_core::conformance_tests!(fixture);
//! ```
//!
//! The suite covers every facade operation, the whole permission matrix, workspace
//! isolation, optimistic concurrency, audit atomicity, search, keyset paging (also while
//! records are being inserted), soft delete, restore, purge and merge. [`MemoryStore`] is the
//! reference implementation the suite is first run against.
//!
//! Where the tests are:
//!
//! * [`suite`]: the engine's tests by theme ([`suite::records`], [`suite::versions`],
//!   [`suite::permissions`], [`suite::audit`], [`suite::lists`], [`suite::workflows`],
//!   [`suite::team`]) and the test world they share: [`suite::World`] with one user of each
//!   role, and builders that create a record in one line.
//! * [`identity_suite`]: sign-in, refresh rotation, sessions, password reset, external tokens.
//! * [`feed_suite`]: the change feed, subscriptions and recently viewed.
//! * [`dashboard_suite`]: the dashboard's maintained figures, per write and under concurrent
//!   writers.
//! * [`security_suite`]: the access log and security events.
//! * [`privacy_suite`]: export, erasure, anonymisation and consent.
//! * [`Intercepted`]: a store forwarding every call to another after a [`Hook`] (the test
//!   doubles: a failing ping, a gate, the n-th call failing).
//! * [`faults`]: a hook that fails the n-th call, and the test that every such failure is
//!   coded and changes nothing.
//! * [`setup`]: one-line set-ups for tests outside the suite (a bootstrapped workspace and
//!   its admin, a member of a role, user inputs, records as a store holds them and their
//!   next versions, a list query walked page by page).
//! * [`session_model`]: a model of sessions that a property test and the `sessions` fuzz
//!   target check the identity layer against.
//!
//! A conformance test is a `pub async fn name(f: Fixture)`; [`conformance_tests!`](crate::conformance_tests)
//! names each one, and crm-core's test `conformance_list` fails when it misses one
//! ([`listing`]: the scan it and crm-http's `suite_list` test share).

pub mod dashboard_suite;
pub mod faults;
pub mod feed_suite;
pub mod identity_suite;
mod intercept;
pub mod listing;
mod memory;
pub mod privacy_suite;
pub mod security_suite;
pub mod session_model;
pub mod setup;
pub mod suite;

pub use intercept::{Call, Hook, Intercepted};
pub use memory::MemoryStore;

use std::any::Any;
use std::future::Future;
use std::sync::Arc;

use crate::Storage;

/// A fresh store for one test, plus whatever must live as long as it (a temp dir, a
/// database handle to drop afterwards).
///
/// A backend that several processes can share (a database server) also passes a *peer*: a
/// second, independent handle on the same data (its own connection pool). The concurrency
/// tests then run half of their racing calls through a second `Crm`/`Identity` instance
/// built on the peer — two instances of the host application on one database — and must
/// reach the same outcomes as with one.
pub struct Fixture {
    /// The store under test.
    pub storage: Arc<dyn Storage>,
    peer: Option<Arc<dyn Storage>>,
    _guard: Box<dyn Any + Send + Sync>,
}

impl Fixture {
    /// A fixture that needs nothing kept alive.
    pub fn new(storage: Arc<dyn Storage>) -> Self {
        Fixture {
            storage,
            peer: None,
            _guard: Box::new(()),
        }
    }

    /// A fixture keeping `guard` alive until the test ends.
    pub fn with_guard(storage: Arc<dyn Storage>, guard: impl Any + Send + Sync) -> Self {
        Fixture {
            storage,
            peer: None,
            _guard: Box::new(guard),
        }
    }

    /// A fixture whose data is also reachable through `peer`, an independent handle on the
    /// same database (see the type's docs).
    pub fn with_peer(
        storage: Arc<dyn Storage>,
        peer: Arc<dyn Storage>,
        guard: impl Any + Send + Sync,
    ) -> Self {
        Fixture {
            storage,
            peer: Some(peer),
            _guard: Box::new(guard),
        }
    }

    /// The peer handle, or the store itself when the backend has none.
    pub fn peer(&self) -> Arc<dyn Storage> {
        self.peer.clone().unwrap_or_else(|| self.storage.clone())
    }
}

/// Runs an async test body on a multi-threaded runtime (two workers, like the CI machine).
pub fn run<F: Future<Output = ()>>(fut: F) {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
        .block_on(fut)
}

/// Instantiates the whole conformance suite for a backend: pass the path of an
/// `async fn() -> Fixture` returning a fresh store. See the [module docs](crate::testkit).
#[macro_export]
macro_rules! conformance_tests {
    ($fixture:path) => {
        $crate::conformance_tests!(@suite $fixture;
            records::bootstrap_makes_first_user_admin,
            records::workspaces_are_listed_by_id,
            records::crud_lifecycle_of_every_kind,
            records::validation_reports_every_field_and_writes_nothing,
            records::unknown_and_foreign_ids_are_not_found,
            records::soft_delete_restore_and_purge,
            versions::stale_version_is_a_conflict,
            versions::concurrent_updates_exactly_one_wins,
            permissions::permission_matrix_is_enforced,
            permissions::tasks_are_own_only_for_sales_and_read_only,
            permissions::workspaces_are_isolated,
            audit::audit_is_atomic_with_changes,
            audit::activity_feed_lists_creations,
            lists::search_matches_word_prefixes,
            lists::cursor_walk_returns_every_record_once,
            lists::cursor_walk_is_stable_under_inserts,
            lists::list_filters_sorts_and_bad_queries,
            lists::company_rename_follows_into_contact_search,
            workflows::merge_contacts_moves_everything,
            workflows::deals_archive_and_move,
            workflows::contact_notes_move_last_seen,
            workflows::tasks_complete_and_reopen,
            workflows::tag_names_are_unique,
            team::user_rules_and_last_admin,
            team::concurrent_demotions_keep_an_admin,
            team::disabled_user_cannot_act,
            team::configuration_is_admin_only_and_validated,
        );
        $crate::conformance_tests!(@in identity_suite $fixture;
            login_answers_tokens_and_one_error_for_every_failure,
            refresh_rotates_tokens,
            reuse_inside_grace_converges,
            reuse_after_grace_revokes_the_family,
            concurrent_refreshes_get_one_child,
            sessions_expire_unless_refreshed,
            logout_disable_and_password_change_end_sessions,
            password_reset_is_single_use_and_expires,
            imported_hashes_are_upgraded_at_login,
            forged_and_malformed_tokens_are_refused,
            external_tokens_map_to_users,
            login_is_throttled_and_limited_but_reset_is_not,
            first_sign_up_is_decided_by_storage,
        );
        $crate::conformance_tests!(@in feed_suite $fixture;
            feed_records_each_change_once_per_record,
            feed_covers_merge_archive_move_and_completion,
            feeds_are_per_workspace,
            pruning_removes_old_deletions_and_raises_the_horizon,
            changes_show_only_what_the_actor_may_read,
            changes_page_filter_and_refuse_bad_parameters,
            subscriptions_see_every_instance_and_resume,
            recently_viewed_keeps_the_latest_hundred,
        );
        #[test]
        fn feed_readers_miss_nothing_under_concurrent_writers() {
            $crate::testkit::run(async {
                let f = $fixture().await;
                let stores = vec![f.storage.clone(), f.peer()];
                $crate::testkit::feed_suite::readers_miss_nothing_under_concurrent_writers(stores).await;
                drop(f);
            });
        }
        $crate::conformance_tests!(@in security_suite $fixture;
            access_log_is_stored_queried_erased_and_pruned,
            security_events_are_stored_queried_redacted_and_pruned,
            security_events_are_recorded_without_secrets,
            hooks_stream_events_and_rate_limits_are_sampled,
            identity_refusals_are_recorded_once_and_without_secrets,
            anomaly_rules_fire_on_attacks_and_not_on_normal_use,
            a_login_from_a_new_address_is_an_anomaly,
            reads_are_persisted_in_the_access_log,
            retention_removes_what_is_past_its_period,
            retention_truncates_then_removes_ended_sessions,
        );
        $crate::conformance_tests!(@in dashboard_suite $fixture;
            dashboard_figures_follow_every_kind_of_write,
            dashboard_shows_what_the_caller_may_read,
            dashboard_is_exact_after_concurrent_writes,
        );
        $crate::conformance_tests!(@in faults $fixture;
            every_storage_failure_is_coded_and_changes_nothing,
        );
        $crate::conformance_tests!(@in privacy_suite $fixture;
            erasure_leaves_no_personal_data,
            erasure_is_idempotent_and_refuses_bad_input,
            contact_export_collects_everything,
            users_export_and_anonymize,
            erasure_resumes_after_a_failure,
            consents_are_recorded_filtered_and_follow_has_newsletter,
            exports_and_erasures_record_one_event_each,
        );
    };
    (@in $module:ident $fixture:path; $($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                $crate::testkit::run(async { $crate::testkit::$module::$name($fixture().await).await });
            }
        )*
    };
    (@suite $fixture:path; $($module:ident :: $name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                $crate::testkit::run(async { $crate::testkit::suite::$module::$name($fixture().await).await });
            }
        )*
    };
}
