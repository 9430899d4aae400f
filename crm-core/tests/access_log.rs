//! Every read of records through the facade is reported to a configured access-log hook:
//! single records, batches, lists and searches (one entry per record returned), with the
//! actor's origin; writes and failed reads are not.

use std::sync::{Arc, Mutex};

use crm_core::access_log::AccessEntry;
use crm_core::model::{ContactInput, EntityKind};
use crm_core::testkit::MemoryStore;
use crm_core::testkit::setup::{bootstrap, email};
use crm_core::{AccessLog, Crm, CrmConfig, ListParams, ManualClock, Timestamp};

#[derive(Default)]
struct Collect(Mutex<Vec<AccessEntry>>);

impl AccessLog for Collect {
    fn record_read(&self, entry: &AccessEntry) {
        self.0.lock().unwrap().push(entry.clone());
    }
}

#[tokio::test]
async fn reads_are_logged_one_entry_per_record() {
    let log = Arc::new(Collect::default());
    let clock = ManualClock::new(Timestamp::parse_rfc3339("2026-03-01T10:00:00Z").unwrap());
    let config = CrmConfig {
        access_log: Some(log.clone()),
        ..CrmConfig::default()
    };
    let crm = Crm::with_clock(
        Arc::new(MemoryStore::new()),
        config,
        Arc::new(clock.clone()),
    );
    let (ws, admin) = bootstrap(&crm, "Logged", email("a@logged.test")).await;
    let actor = admin.with_origin("GET /contacts/{id}", Some("203.0.113.9".into()));
    let mut ids = Vec::new();
    for name in ["Read", "Me"] {
        let c = crm
            .contacts()
            .create(
                &actor,
                ContactInput {
                    first_name: name.into(),
                    last_name: "Person".into(),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        ids.push(c.id);
    }
    assert!(log.0.lock().unwrap().is_empty(), "writes are not reads");
    crm.contacts().get(&actor, ids[0]).await.unwrap();
    let entries = log.0.lock().unwrap().clone();
    assert_eq!(
        entries,
        vec![AccessEntry {
            id: entries[0].id,
            at: crm_core::Clock::now(&clock),
            workspace_id: ws.id,
            user_id: actor.user_id(),
            entity: EntityKind::Contact,
            record_id: ids[0].uuid(),
            route: "GET /contacts/{id}".into(),
            address: Some("203.0.113.9".into()),
        }]
    );
    log.0.lock().unwrap().clear();
    crm.contacts()
        .list(&actor, &ListParams::new())
        .await
        .unwrap();
    assert_eq!(
        log.0.lock().unwrap().len(),
        2,
        "a list: each record returned"
    );
    log.0.lock().unwrap().clear();
    let found = crm.search(&actor, "read", 10).await.unwrap();
    assert_eq!(found.contacts.len(), 1);
    let entries = log.0.lock().unwrap().clone();
    assert_eq!(entries.len(), 1, "a search: the ids returned");
    assert_eq!(entries[0].record_id, ids[0].uuid());
    log.0.lock().unwrap().clear();
    crm.contacts().get_many(&actor, &ids).await.unwrap();
    crm.users().get(&actor, actor.user_id()).await.unwrap();
    let _ = crm
        .contacts()
        .get(&actor, crm_core::id::ContactId::generate())
        .await
        .unwrap_err();
    let entries = log.0.lock().unwrap().clone();
    assert_eq!(entries.len(), 3, "failed reads are not reported");
    assert_eq!(entries[2].entity, EntityKind::User);
    assert!(!format!("{:?}", CrmConfig::default()).is_empty());
}
