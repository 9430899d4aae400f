//! Single-record reads are reported to a configured access log; nothing else is.

use std::sync::{Arc, Mutex};

use crm_core::model::{ContactInput, EntityKind, UserInput};
use crm_core::testkit::MemoryStore;
use crm_core::{AccessEvent, AccessLog, Crm, CrmConfig, ListParams, ManualClock, Timestamp};

#[derive(Default)]
struct Collect(Mutex<Vec<AccessEvent>>);

impl AccessLog for Collect {
    fn record_read(&self, event: &AccessEvent) {
        self.0.lock().unwrap().push(event.clone());
    }
}

#[tokio::test]
async fn reads_of_single_records_are_logged() {
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
    let (ws, admin) = crm
        .bootstrap(
            "Logged",
            UserInput {
                email: "a@logged.test".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let actor = crm.actor(ws.id, admin.id).await.unwrap();
    let c = crm
        .contacts()
        .create(
            &actor,
            ContactInput {
                first_name: "Read".into(),
                last_name: "Me".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(log.0.lock().unwrap().is_empty(), "writes are not reads");
    crm.contacts()
        .list(&actor, &ListParams::new())
        .await
        .unwrap();
    assert!(log.0.lock().unwrap().is_empty(), "lists are not reported");
    crm.contacts().get(&actor, c.id).await.unwrap();
    crm.users().get(&actor, admin.id).await.unwrap();
    let _ = crm
        .contacts()
        .get(&actor, crm_core::id::ContactId::generate())
        .await
        .unwrap_err();
    let events = log.0.lock().unwrap().clone();
    assert_eq!(events.len(), 2, "failed reads are not reported");
    assert_eq!(
        events[0],
        AccessEvent {
            at: clock_now(&clock),
            workspace_id: ws.id,
            actor_id: admin.id,
            entity: EntityKind::Contact,
            record_id: c.id.uuid(),
        }
    );
    assert_eq!(events[1].entity, EntityKind::User);
    assert!(!format!("{:?}", CrmConfig::default()).is_empty());
}

fn clock_now(c: &ManualClock) -> Timestamp {
    crm_core::Clock::now(c)
}
