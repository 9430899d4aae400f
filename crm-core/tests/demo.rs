//! The demo-data seeder writes valid, linked records that the services read back.

use std::sync::Arc;

use crm_core::demo::{Volume, seed};
use crm_core::testkit::{MemoryStore, run};
use crm_core::{Crm, CrmConfig, ListParams};

#[test]
fn seeded_records_are_listed_searchable_and_audited() {
    run(async {
        let store = Arc::new(MemoryStore::new());
        let crm = Crm::new(store.clone(), CrmConfig::default());
        let (actor, owners) = crm_core::demo::workspace(&crm, "Demo", "demo.test", 2)
            .await
            .unwrap();
        let volume = Volume {
            companies: 30,
            contacts: 120,
            deals: 40,
            tasks: 50,
            notes: 60,
        };
        let seeded = seed(store.as_ref(), actor.workspace_id(), &owners, volume, 7)
            .await
            .unwrap();
        assert_eq!(seeded.contacts.len(), 120);
        assert_eq!(seeded.companies.len(), 30);

        // Walk every contact through the service: all there, each one readable.
        let mut seen = 0;
        let mut params = ListParams::new().limit(100);
        loop {
            let page = crm.contacts().list(&actor, &params).await.unwrap();
            seen += page.data.len();
            match page.next_cursor {
                Some(c) => params = params.cursor(Some(c)),
                None => break,
            }
        }
        assert_eq!(seen, 120);
        let one = crm
            .contacts()
            .get(&actor, crm_core::id::Id::from_uuid(seeded.contacts[5]))
            .await
            .unwrap();
        assert!(one.company_id.is_some(), "contacts belong to companies");

        // Search finds a seeded contact by the first word of its last name.
        let hits = crm
            .contacts()
            .list(&actor, &ListParams::new().q(&one.last_name))
            .await
            .unwrap();
        assert!(hits.data.iter().any(|c| c.id == one.id));

        // Each write has its audit entry.
        let audit = crm
            .audit()
            .list(
                &actor,
                &crm_core::audit::AuditQuery {
                    record_id: Some(one.id.uuid()),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(audit.len(), 1);

        let deals = crm
            .deals()
            .list(&actor, &ListParams::new().limit(100))
            .await
            .unwrap();
        assert_eq!(deals.data.len(), 40);
    });
}
