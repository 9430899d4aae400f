//! `Crm::present`, the one exit every read path takes (and the change feed will): records
//! masked per the workspace's configuration for `read_only`, whole for the other roles,
//! and — under a search query — kept only if they still match masked.

use std::sync::Arc;

use crm_core::Crm;
use crm_core::CrmConfig;
use crm_core::mask::PersonalField;
use crm_core::model::{
    ConfigurationPatch, ContactInput, EmailEntry, Entity, PhoneEntry, Record, Role,
};
use crm_core::query::SearchQuery;
use crm_core::testkit::MemoryStore;
use crm_core::testkit::setup::{bootstrap, email, member};

#[tokio::test]
async fn present_masks_for_read_only_and_filters_hidden_matches() {
    let crm = Crm::new(Arc::new(MemoryStore::new()), CrmConfig::default());
    let (_, admin) = bootstrap(&crm, "Masked", email("a@masked.test")).await;
    let reader = member(&crm, &admin, "r@masked.test", Role::ReadOnly).await;
    let contact = crm
        .contacts()
        .create(
            &admin,
            ContactInput {
                first_name: "Jane".into(),
                last_name: "Doe".into(),
                emails: vec![EmailEntry {
                    email: "jdoe1975@example.com".into(),
                    kind: Default::default(),
                }],
                phones: vec![PhoneEntry {
                    number: "+1 520 555 0199".into(),
                    kind: Default::default(),
                }],
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let record = contact.clone().into_record();
    let emails_of = |records: &[Record]| -> Vec<String> {
        records
            .iter()
            .filter_map(|r| match r {
                Record::Contact(c) => Some(c.emails[0].email.clone()),
                _ => None,
            })
            .collect()
    };

    // Nothing configured: everyone sees everything.
    let shown = crm
        .present(&reader, vec![record.clone()], None)
        .await
        .unwrap();
    assert_eq!(emails_of(&shown), ["jdoe1975@example.com"]);

    let config = crm.configuration().get(&admin).await.unwrap();
    crm.configuration()
        .update(
            &admin,
            config.version,
            ConfigurationPatch {
                masked_fields: Some(vec![PersonalField::Emails, PersonalField::Emails]),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let config = crm.configuration().get(&admin).await.unwrap();
    assert_eq!(
        config.masked_fields,
        [PersonalField::Emails],
        "deduplicated"
    );

    let shown = crm
        .present(&reader, vec![record.clone()], None)
        .await
        .unwrap();
    assert_eq!(emails_of(&shown), ["j***@example.com"]);
    match &shown[0] {
        // Phones are not configured: left whole.
        Record::Contact(c) => assert_eq!(c.phones[0].number, "+1 520 555 0199"),
        other => panic!("{other:?}"),
    }
    let shown = crm
        .present(&admin, vec![record.clone()], None)
        .await
        .unwrap();
    assert_eq!(emails_of(&shown), ["jdoe1975@example.com"]);

    // A query that only the hidden value matches keeps nothing for the reader.
    let hidden = SearchQuery {
        terms: vec!["jdoe1975".into()],
    };
    let visible = SearchQuery {
        terms: vec!["jane".into(), "example".into()],
    };
    let none = crm
        .present(&reader, vec![record.clone()], Some(&hidden))
        .await
        .unwrap();
    assert!(none.is_empty());
    let kept = crm
        .present(&admin, vec![record.clone()], Some(&hidden))
        .await
        .unwrap();
    assert_eq!(kept.len(), 1);
    let kept = crm
        .present(&reader, vec![record], Some(&visible))
        .await
        .unwrap();
    assert_eq!(emails_of(&kept), ["j***@example.com"]);

    // The typed paths agree, and the stored record is unchanged.
    let got = crm.contacts().get(&reader, contact.id).await.unwrap();
    assert_eq!(got.emails[0].email, "j***@example.com");
    let got = crm.contacts().get(&admin, contact.id).await.unwrap();
    assert_eq!(got.emails[0].email, "jdoe1975@example.com");

    // Batch reads and the change feed hand records out through the same exit.
    let batch = crm
        .contacts()
        .get_many(&reader, &[contact.id])
        .await
        .unwrap();
    assert_eq!(batch[0].emails[0].email, "j***@example.com");
    let feed_emails = |page: crm_core::service::ChangesPage| -> Vec<String> {
        let records: Vec<Record> = page.data.into_iter().filter_map(|c| c.record).collect();
        emails_of(&records)
    };
    let page = crm.changes(&reader, None, 100).await.unwrap();
    assert_eq!(feed_emails(page), ["j***@example.com"]);
    let page = crm.changes(&admin, None, 100).await.unwrap();
    assert_eq!(feed_emails(page), ["jdoe1975@example.com"]);
}
