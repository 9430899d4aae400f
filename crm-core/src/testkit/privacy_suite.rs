//! Conformance tests of data protection ([`crate::privacy`]): export, erasure,
//! anonymization, and their bad input. Each takes a fresh [`Fixture`].

#![allow(missing_docs, clippy::missing_panics_doc)]

use std::sync::Arc;

use uuid::Uuid;

use super::Fixture;
use super::faults::FailNth;
use super::intercept::Intercepted;
use super::setup::{stored_access, stored_events};
use super::suite::{
    World, company, contact, contact_note, contact_task, contacts_deal, deal, deal_note, retitle,
    world,
};
use crate::Actor;
use crate::access_log::{AccessEntry, AccessLogQuery};
use crate::audit::{AuditAction, AuditQuery};
use crate::error::ErrorKind;
use crate::id::{ContactId, UserId};
use crate::model::*;
use crate::privacy::REDACTED;
use crate::query::{Deleted, ListParams};
use crate::security::{SecurityEventQuery, SecurityEventType};
use crate::service::{Managed, Records};
use crate::views::View;

/// Unique strings the erasure story writes into every free-text field of the contact and
/// its notes; none may be found anywhere after the erasure.
pub const MARKERS: &[&str] = &[
    "qxfirst",
    "qxlast",
    "qxtitle",
    "qxgender",
    "qxbackground",
    "qxmail",
    "4477123987",
    "qxlinked",
    "qxavatar",
    "qxretitled",
    "qxnote",
    "qxpurgednote",
];

/// The contact the erasure story creates, updates, reads, searches, notes and erases, with
/// the world it lives in.
pub struct Story {
    pub world: World,
    pub contact: ContactId,
    /// A contact that must survive untouched.
    pub bystander: ContactId,
}

fn marked_contact(company: crate::id::CompanyId) -> ContactInput {
    ContactInput {
        first_name: "Qxfirst".into(),
        last_name: "Qxlast".into(),
        title: Some("qxtitle".into()),
        gender: Some("qxgender".into()),
        background: Some("Met at qxbackground".into()),
        emails: vec![EmailEntry {
            email: "qxmail@qxmail.test".into(),
            kind: EmailKind::Work,
        }],
        phones: vec![PhoneEntry {
            number: "+14477123987".into(),
            kind: PhoneKind::Home,
        }],
        company_id: Some(company),
        linkedin_url: Some("https://linkedin.example/in/qxlinked".into()),
        avatar: Some("https://img.example/qxavatar.png".into()),
        ..Default::default()
    }
}

/// Runs the story up to and including the erasure (by the admin).
pub async fn erasure_story(f: &Fixture) -> Story {
    let w = world(f).await;
    let crm = &w.crm;
    let company = w.create(&w.admin, company("Harbor Ltd")).await;
    let c = w.create(&w.sales, marked_contact(company.id)).await;
    let bystander = w.create(&w.sales, contact("Bea", "Stander")).await;
    let c = w
        .update(&w.sales, c.id, c.version, retitle("qxretitled"))
        .await;
    for text in ["First call with qxnote", "qxpurgednote to forget"] {
        w.create(&w.sales, contact_note(c.id, text)).await;
    }
    // One note deleted and purged before the erasure: only the audit trail remembers it.
    let purged = w
        .list::<Note>(&w.sales, &ListParams::new().filter("contact_id", c.id))
        .await
        .into_iter()
        .find(|n| n.text.contains("qxpurgednote"))
        .unwrap();
    crm.notes().delete(&w.sales, purged.id).await.unwrap();
    crm.notes().purge(&w.admin, purged.id).await.unwrap();
    let deal = w
        .create(
            &w.sales,
            DealInput {
                contact_ids: vec![c.id],
                company_id: Some(company.id),
                ..deal("Harbor renewal")
            },
        )
        .await;
    w.create(&w.sales, deal_note(deal.id, "Deal note about renewal"))
        .await;
    w.create(&w.sales, contact_task(c.id, "Call back")).await;
    // Read it, search for it, view it.
    let c = w.get(&w.sales, c.id).await;
    let found = crm.search(&w.sales, "qxfirst", 10).await.unwrap();
    assert!(format!("{found:?}").contains("Qxfirst"));
    let found = crm
        .contacts()
        .list(&w.manager, &ListParams::new().q("4477123987"))
        .await
        .unwrap();
    assert_eq!(found.data.len(), 1);
    crm.storage()
        .record_views(&[View {
            workspace_id: w.admin.workspace_id(),
            user_id: w.sales.user_id(),
            entity: EntityKind::Contact,
            record_id: c.id.uuid(),
            at: crm.now(),
        }])
        .await
        .unwrap();
    // Reads recorded in the access log: of the contact, of its note, of the bystander.
    let note_id = w
        .list::<Note>(&w.sales, &ListParams::new().filter("contact_id", c.id))
        .await[0]
        .id
        .uuid();
    let read = |kind, record_id| AccessEntry {
        id: crate::access_log::id_at(crm.now()),
        workspace_id: w.admin.workspace_id(),
        at: crm.now(),
        user_id: w.sales.user_id(),
        entity: kind,
        record_id,
        route: "GET /contacts/{id}".into(),
        address: Some("203.0.113.7".into()),
    };
    crm.storage()
        .append_access_log(&[
            read(EntityKind::Contact, c.id.uuid()),
            read(EntityKind::Note, note_id),
            read(EntityKind::Contact, bystander.id.uuid()),
        ])
        .await
        .unwrap();
    let export = crm.privacy().export_contact(&w.admin, c.id).await.unwrap();
    assert_eq!(export.access_log.as_array().map(Vec::len), Some(1));
    // Before: the markers are there (the check below would find them).
    let before = dump(&w).await.to_lowercase();
    assert!(
        MARKERS.iter().all(|m| before.contains(m)),
        "the story wrote every marker"
    );
    let report = crm.privacy().erase_contact(&w.admin, c.id).await.unwrap();
    assert!(!report.already_erased);
    assert_eq!(
        report.removed.len(),
        2,
        "both notes, the purged one included"
    );
    Story {
        world: w,
        contact: c.id,
        bystander: bystander.id,
    }
}

/// Everything the engine's read API shows the admin (and the other roles), as one text.
pub async fn dump(w: &World) -> String {
    reads(w, true).await
}

/// The page `params` lists through `records` for `actor`, as text (nothing if refused).
async fn listed<E: Managed>(records: Records<'_, E>, actor: &Actor, params: &ListParams) -> String {
    match records.list(actor, params).await {
        Ok(page) => format!("{page:?}"),
        Err(_) => String::new(),
    }
}

/// [`dump`], optionally without the users' exports (which record export events).
async fn reads(w: &World, exports: bool) -> String {
    let crm = &w.crm;
    let mut out = String::new();
    for actor in [&w.admin, &w.manager, &w.sales, &w.reader] {
        for deleted in [Deleted::Exclude, Deleted::Include] {
            let p = ListParams::new().limit(100).deleted(deleted);
            out += &listed(crm.contacts(), actor, &p).await;
            out += &listed(crm.companies(), actor, &p).await;
            out += &listed(crm.deals(), actor, &p).await;
            out += &listed(crm.notes(), actor, &p).await;
            out += &listed(crm.tasks(), actor, &p).await;
            out += &listed(crm.tags(), actor, &p).await;
        }
        out += &format!(
            "{:?}",
            crm.users().list(actor, &ListParams::new().limit(100)).await
        );
        for q in MARKERS {
            out += &format!("{:?}", crm.search(actor, q, 25).await);
        }
        out += &format!("{:?}", crm.activity().list(actor, None, 100).await);
        out += &format!("{:?}", crm.dashboard(actor, None).await);
        out += &format!("{:?}", crm.changes(actor, None, 1000).await);
        for kind in crate::feed::FEED_KINDS {
            out += &format!("{:?}", crm.recent(actor, kind, 100).await);
            out += &format!(
                "{:?}",
                crm.storage()
                    .recent_views(actor.workspace_id(), actor.user_id(), kind, 100)
                    .await
            );
        }
        if exports {
            out += &format!(
                "{:?}",
                crm.privacy().export_user(actor, actor.user_id()).await
            );
        }
    }
    let ws = w.admin.workspace_id();
    let all = AccessLogQuery {
        limit: 500,
        ..Default::default()
    };
    out += &format!("{:?}", crm.storage().access_log(ws, &all).await.unwrap());
    let events = SecurityEventQuery {
        limit: 500,
        ..Default::default()
    };
    // (Without the export events this very dump records.)
    let events: Vec<_> = crm
        .storage()
        .security_events(ws, &events)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.kind != SecurityEventType::ExportPerformed)
        .collect();
    out += &format!("{events:?}");
    let mut q = AuditQuery {
        limit: Some(100),
        ..Default::default()
    };
    loop {
        let page = crm.audit().list(&w.admin, &q).await.unwrap();
        out += &format!("{page:?}");
        if page.len() < 100 {
            break;
        }
        q.before = page.last().map(|e| e.id);
    }
    out
}

fn kind<T: std::fmt::Debug>(r: crate::Result<T>) -> ErrorKind {
    r.expect_err("expected an error").kind()
}

/// The proof: after the erasure no read of the API shows any marker, the erased id is in
/// nobody's recently viewed list, one erasure entry stays, and the bystander is untouched.
pub async fn erasure_leaves_no_personal_data(f: Fixture) {
    let s = erasure_story(&f).await;
    let w = &s.world;
    let text = dump(w).await;
    for m in MARKERS {
        assert!(
            !text.to_lowercase().contains(m),
            "marker {m} survived the erasure"
        );
    }
    for user in [&w.admin, &w.manager, &w.sales, &w.reader] {
        let recent = w
            .crm
            .storage()
            .recent_views(
                w.admin.workspace_id(),
                user.user_id(),
                EntityKind::Contact,
                100,
            )
            .await
            .unwrap();
        assert!(recent.iter().all(|(id, _)| *id != s.contact.uuid()));
    }
    let crm = &w.crm;
    let ws = w.admin.workspace_id();
    let reads = stored_access(crm.storage().as_ref(), ws).await;
    assert_eq!(reads.len(), 1, "only the bystander's read stays: {reads:?}");
    assert_eq!(reads[0].record_id, s.bystander.uuid());
    let events = crm
        .storage()
        .security_events(
            ws,
            &SecurityEventQuery {
                kind: Some(SecurityEventType::ErasurePerformed),
                limit: 500,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].actor_id, Some(w.admin.user_id()));
    assert_eq!(events[0].detail["record_id"], s.contact.uuid().to_string());
    assert_eq!(
        kind(crm.contacts().get(&w.admin, s.contact).await),
        ErrorKind::NotFound
    );
    assert_eq!(
        kind(crm.privacy().export_contact(&w.admin, s.contact).await),
        ErrorKind::NotFound
    );
    // What stays about it: the erasure entry (who, when, which id) and redacted entries
    // that still say who changed which field when.
    let about = w
        .audit(AuditQuery {
            record_id: Some(s.contact.uuid()),
            limit: Some(100),
            ..Default::default()
        })
        .await;
    let erasures: Vec<_> = about
        .iter()
        .filter(|e| e.action == AuditAction::Erase)
        .collect();
    assert_eq!(erasures.len(), 1);
    assert_eq!(erasures[0].actor_id, Some(w.admin.user_id()));
    let update = about
        .iter()
        .find(|e| e.action == AuditAction::Update && e.changes.iter().any(|c| c.field == "title"))
        .expect("the update's entry stays");
    assert_eq!(update.actor_id, Some(w.sales.user_id()));
    assert_eq!(update.label, REDACTED);
    let title = update.changes.iter().find(|c| c.field == "title").unwrap();
    assert_eq!(title.after, serde_json::json!(REDACTED));
    // Deals and tasks lost the reference, and stay.
    let deals = w.list::<Deal>(&w.admin, &ListParams::new()).await;
    assert_eq!(deals.len(), 1);
    assert!(deals[0].contact_ids.is_empty());
    let tasks = w.list::<Task>(&w.admin, &ListParams::new()).await;
    assert_eq!(tasks.len(), 1);
    assert_eq!(tasks[0].contact_id, None);
    // The deal's note and the bystander are untouched.
    let b = w.get(&w.admin, s.bystander).await;
    assert_eq!(b.first_name, "Bea");
    assert!(text.contains("Deal note about renewal"));
    assert!(text.contains("Stander"));
}

/// Erasing twice answers the same erasure; other roles, unknown and foreign ids are refused
/// with coded errors and change nothing.
pub async fn erasure_is_idempotent_and_refuses_bad_input(f: Fixture) {
    let s = erasure_story(&f).await;
    let w = &s.world;
    let crm = &w.crm;
    let privacy = crm.privacy();
    let first = w.audit(AuditQuery::default()).await;
    let again = privacy.erase_contact(&w.admin, s.contact).await.unwrap();
    assert!(again.already_erased);
    assert_eq!(again.erased_by, Some(w.admin.user_id()));
    assert_eq!(again.audit_entries_redacted, 0);
    let before = reads(w, false).await;
    for actor in [&w.manager, &w.sales, &w.reader] {
        assert_eq!(
            kind(privacy.erase_contact(actor, s.bystander).await),
            ErrorKind::Forbidden
        );
    }
    assert_eq!(
        kind(privacy.erase_contact(&w.admin, ContactId::generate()).await),
        ErrorKind::NotFound
    );
    // Another workspace's contact is unknown here, and the other way round.
    let other = w.other("Globex").await;
    let theirs = other.create(&other.admin, contact("Gary", "Globex")).await;
    assert_eq!(
        kind(privacy.erase_contact(&w.admin, theirs.id).await),
        ErrorKind::NotFound
    );
    assert_eq!(
        kind(
            other
                .crm
                .privacy()
                .erase_contact(&other.admin, s.bystander)
                .await
        ),
        ErrorKind::NotFound
    );
    assert_eq!(
        kind(privacy.export_contact(&w.admin, theirs.id).await),
        ErrorKind::NotFound
    );
    // Their users are unknown here too, as is a made-up one.
    let their_user = other.sales.user_id();
    let refusals = [
        kind(privacy.anonymize_user(&w.admin, their_user).await),
        kind(privacy.export_user(&w.admin, their_user).await),
        kind(privacy.anonymize_user(&w.admin, UserId::generate()).await),
    ];
    assert_eq!(refusals, [ErrorKind::NotFound; 3]);
    assert_eq!(reads(w, false).await, before, "refusals changed nothing");
    let u = other
        .crm
        .users()
        .get(&other.admin, their_user)
        .await
        .unwrap();
    assert!(!u.disabled, "their user is untouched");
    let last = w.audit(AuditQuery::default()).await;
    assert_eq!(first, last);
    other.get(&other.admin, theirs.id).await;
}

/// The export holds the contact (also soft deleted), its notes, tasks, deals, company and
/// audit trail; only admins and managers get it.
pub async fn contact_export_collects_everything(f: Fixture) {
    let w = world(&f).await;
    let crm = &w.crm;
    let company = w.create(&w.admin, company("Harbor Ltd")).await;
    let c = w.create(&w.sales, marked_contact(company.id)).await;
    w.create(&w.sales, contact_note(c.id, "qxnote")).await;
    w.create(&w.sales, contact_task(c.id, "Call")).await;
    w.create(&w.sales, contacts_deal(vec![c.id], "Renewal"))
        .await;
    crm.contacts().delete(&w.sales, c.id).await.unwrap();
    for actor in [&w.sales, &w.reader] {
        assert_eq!(
            kind(crm.privacy().export_contact(actor, c.id).await),
            ErrorKind::Forbidden
        );
    }
    for actor in [&w.admin, &w.manager] {
        let e = crm.privacy().export_contact(actor, c.id).await.unwrap();
        assert_eq!(e.contact.id, c.id);
        assert!(e.contact.deleted_at.is_some());
        assert_eq!(e.notes.len(), 1);
        assert_eq!(e.tasks.len(), 1);
        assert_eq!(e.deals.len(), 1);
        assert_eq!(e.company.as_ref().map(|c| c.id), Some(company.id));
        assert!(e.audit.iter().any(|a| a.action == AuditAction::Create));
        assert!(e.audit.iter().any(|a| a.action == AuditAction::Delete));
        assert!(e.audit.iter().any(|a| a.entity == EntityKind::Note));
        assert_eq!(e.header.generated_by, actor.user_id());
        assert_eq!(e.header.workspace_id, w.admin.workspace_id());
        assert_eq!(e.header.workspace_name.as_deref(), Some("Acme"));
        let json = serde_json::to_string(&e).unwrap();
        assert!(json.contains("qxmail@qxmail.test") && json.contains("qxnote"));
    }
}

/// A user's export (admins, or themselves): profile, sessions and their own actions; an
/// anonymized user becomes "former user N", keeps its records, and its data is gone.
pub async fn users_export_and_anonymize(f: Fixture) {
    let w = world(&f).await;
    let crm = &w.crm;
    let privacy = crm.privacy();
    let c = w.create(&w.sales, contact("Owned", "Record")).await;
    let ws = w.admin.workspace_id();
    crm.storage()
        .append_access_log(&[AccessEntry {
            id: crate::access_log::id_at(crm.now()),
            workspace_id: ws,
            at: crm.now(),
            user_id: w.sales.user_id(),
            entity: EntityKind::Contact,
            record_id: c.id.uuid(),
            route: "GET /contacts/{id}".into(),
            address: Some("198.51.100.23".into()),
        }])
        .await
        .unwrap();
    crm.storage()
        .append_security_events(&[crate::security::SecurityEvent::new(
            ws,
            SecurityEventType::LoginSucceeded,
            crm.now(),
        )
        .user(w.sales.user_id())
        .address(Some("198.51.100.23"))
        .email("sales@acme.test")])
        .await
        .unwrap();
    let me = privacy
        .export_user(&w.sales, w.sales.user_id())
        .await
        .unwrap();
    assert_eq!(me.security_events.as_array().map(Vec::len), Some(1));
    assert_eq!(me.profile.email, "sales@acme.test");
    assert!(
        me.audit_own_actions
            .iter()
            .any(|e| e.record_id == c.id.uuid())
    );
    assert!(
        me.audit_own_actions
            .iter()
            .all(|e| e.actor_id == Some(w.sales.user_id()))
    );
    privacy
        .export_user(&w.admin, w.sales.user_id())
        .await
        .unwrap();
    for actor in [&w.manager, &w.sales2, &w.reader] {
        assert_eq!(
            kind(privacy.export_user(actor, w.sales.user_id()).await),
            ErrorKind::Forbidden
        );
    }
    assert_eq!(
        kind(privacy.export_user(&w.admin, UserId::generate()).await),
        ErrorKind::NotFound
    );
    // Refusals: other roles, oneself, unknown ids, the last admin.
    for actor in [&w.manager, &w.sales2] {
        assert_eq!(
            kind(privacy.anonymize_user(actor, w.sales.user_id()).await),
            ErrorKind::Forbidden
        );
    }
    assert_eq!(
        kind(privacy.anonymize_user(&w.admin, w.admin.user_id()).await),
        ErrorKind::Forbidden
    );
    assert_eq!(
        kind(privacy.anonymize_user(&w.admin, UserId::generate()).await),
        ErrorKind::NotFound
    );
    let report = privacy
        .anonymize_user(&w.admin, w.sales.user_id())
        .await
        .unwrap();
    assert!(!report.already_erased);
    let again = privacy
        .anonymize_user(&w.admin, w.sales.user_id())
        .await
        .unwrap();
    assert!(again.already_erased);
    let u = crm.users().get(&w.admin, w.sales.user_id()).await.unwrap();
    assert_eq!(u.label(), "Former user 1");
    assert!(u.disabled);
    assert_eq!(u.email, "former-user-1@anonymized.invalid");
    assert_eq!(
        kind(crm.actor(w.admin.workspace_id(), w.sales.user_id()).await),
        ErrorKind::AccountDisabled
    );
    // Records keep their owner.
    let owned = w.get(&w.admin, c.id).await;
    assert_eq!(owned.sales_id, Some(w.sales.user_id()));
    // Nothing about them says "sales@acme.test" any more.
    let all = w
        .audit(AuditQuery {
            limit: Some(100),
            ..Default::default()
        })
        .await;
    assert!(!format!("{all:?}").contains("sales@acme.test"));
    let traces = format!(
        "{:?}{:?}",
        stored_access(crm.storage().as_ref(), ws).await,
        stored_events(crm.storage().as_ref(), ws).await
    );
    assert!(traces.contains("LoginSucceeded") && traces.contains("ErasurePerformed"));
    assert!(!traces.contains("198.51.100.23") && !traces.contains("sales@acme.test"));
    let second = privacy
        .anonymize_user(&w.admin, w.sales2.user_id())
        .await
        .unwrap();
    assert_eq!(second.entity, EntityKind::User);
    let u2 = crm.users().get(&w.admin, w.sales2.user_id()).await.unwrap();
    assert_eq!(u2.last_name, "user 2");
}

/// A storage failure anywhere in an erasure is a coded error; the records are all removed
/// or all still there, and calling again finishes the job.
pub async fn erasure_resumes_after_a_failure(f: Fixture) {
    let faulty = Arc::new(Intercepted::new(f.storage.clone(), FailNth::new()));
    let mut injected = 0;
    for n in 0.. {
        // A fresh contact per attempt, with a few notes and an update.
        let w = super::suite::world_on_storage(faulty.clone(), &format!("Ws{n}")).await;
        let crm = &w.crm;
        let c = w.create(&w.sales, marked_contact_plain()).await;
        for _ in 0..3 {
            w.create(&w.sales, contact_note(c.id, "qxnote")).await;
        }
        faulty.hook().arm(Some(n));
        let outcome = crm.privacy().erase_contact(&w.admin, c.id).await;
        let tripped = faulty.hook().tripped();
        faulty.hook().arm(None);
        if !tripped {
            outcome.unwrap();
            assert!(n > 5, "only {n} storage calls");
            break;
        }
        injected += 1;
        let e = outcome.expect_err("an injected failure surfaces");
        assert!(e.code().starts_with("E3"), "{}", e.code());
        let exists = f
            .storage
            .get(w.admin.workspace_id(), EntityKind::Contact, c.id.uuid())
            .await
            .unwrap()
            .is_some();
        let notes = w
            .list::<Note>(&w.admin, &ListParams::new().filter("contact_id", c.id))
            .await
            .len();
        assert!(
            (exists && notes == 3) || (!exists && notes == 0),
            "failure at call {n} split the removal"
        );
        let report = crm.privacy().erase_contact(&w.admin, c.id).await.unwrap();
        assert_eq!(report.already_erased, !exists);
        let text = format!(
            "{:?}",
            w.audit(AuditQuery {
                limit: Some(100),
                ..Default::default()
            })
            .await
        );
        assert!(!text.contains("qxnote") && !text.contains("qxfirst"));
    }
    assert!(injected > 5);
}

/// Consents: recorded per purpose, the history in the audit trail and the export, the list
/// filter, `has_newsletter` in step both ways, bad input refused with nothing changed.
pub async fn consents_are_recorded_filtered_and_follow_has_newsletter(f: Fixture) {
    use crate::privacy::consent::{ConsentInput, ConsentStatus};
    let w = world(&f).await;
    let crm = &w.crm;
    let mk = |first: &str, newsletter: bool| ContactInput {
        first_name: first.into(),
        last_name: "Consent".into(),
        has_newsletter: newsletter,
        ..Default::default()
    };
    let a = w.create(&w.sales, mk("Ann", false)).await;
    let b = w.create(&w.sales, mk("Bob", true)).await;
    assert_eq!(
        b.consents.len(),
        1,
        "has_newsletter on create records the consent"
    );
    assert_eq!(b.consents[0].purpose, "newsletter");
    let grant = |purpose: &str, status| ConsentInput {
        purpose: purpose.into(),
        status,
        at: None,
        source: Some("web form".into()),
        note: Some("ticked the box".into()),
    };
    // `a`'s consents, as sales.
    let record = async |input: ConsentInput| {
        let privacy = crm.privacy();
        privacy.record_consent(&w.sales, a.id, input).await.unwrap()
    };
    let a1 = record(grant("marketing.email", ConsentStatus::Granted)).await;
    assert_eq!(a1.version, a.version + 1);
    assert!(!a1.has_newsletter);
    let a2 = record(grant("newsletter", ConsentStatus::Granted)).await;
    assert!(
        a2.has_newsletter,
        "the newsletter consent sets has_newsletter"
    );
    let by = |purpose: &str| ListParams::new().filter("consented", purpose);
    // The ids of the contacts consented to `purpose`, as the read-only user lists them.
    let consented = async |purpose: &str| {
        let listed = w.list::<Contact>(&w.reader, &by(purpose)).await;
        let mut ids: Vec<_> = listed.into_iter().map(|c| c.id).collect();
        ids.sort();
        ids
    };
    let mut both = vec![a.id, b.id];
    both.sort();
    assert_eq!(consented("newsletter").await, both);
    assert_eq!(consented("marketing.email").await, vec![a.id]);
    assert!(
        w.list::<Contact>(&w.reader, &by("profiling"))
            .await
            .is_empty()
    );
    // Withdrawing, through the consent or through has_newsletter.
    record(grant("marketing.email", ConsentStatus::Withdrawn)).await;
    assert!(
        w.list::<Contact>(&w.reader, &by("marketing.email"))
            .await
            .is_empty()
    );
    let b2 = w
        .update(
            &w.sales,
            b.id,
            b.version,
            ContactPatch {
                has_newsletter: Some(false),
                ..Default::default()
            },
        )
        .await;
    assert_eq!(b2.consents[0].status, ConsentStatus::Withdrawn);
    assert_eq!(b2.consents[0].source.as_deref(), Some("has_newsletter"));
    assert_eq!(consented("newsletter").await, vec![a.id]);
    // The history: every change in the audit trail, oldest first in the export.
    let export = crm
        .privacy()
        .export_contact(&w.manager, a.id)
        .await
        .unwrap();
    assert_eq!(export.consent_history.len(), 3);
    assert!(
        export.consent_history[0]
            .after
            .to_string()
            .contains("marketing.email")
    );
    assert!(
        export.consent_history[2]
            .after
            .to_string()
            .contains("withdrawn")
    );
    // Bad input: coded errors, nothing changed.
    let before = w.get(&w.admin, a.id).await;
    let future = ConsentInput {
        at: Some(crm.now().plus(std::time::Duration::from_secs(3600))),
        ..grant("newsletter", ConsentStatus::Granted)
    };
    for (input, field) in [
        (grant("", ConsentStatus::Granted), "purpose"),
        (grant("Not A Purpose", ConsentStatus::Granted), "purpose"),
        (grant(&"x".repeat(23), ConsentStatus::Granted), "purpose"),
        (future, "at"),
        (
            ConsentInput {
                source: Some("s".repeat(201)),
                ..grant("newsletter", ConsentStatus::Granted)
            },
            "source",
        ),
    ] {
        let e = crm
            .privacy()
            .record_consent(&w.sales, a.id, input)
            .await
            .expect_err("refused");
        assert_eq!(e.kind(), ErrorKind::Validation);
        assert!(
            e.fields().iter().any(|f| f.field == field),
            "{field}: {e:?}"
        );
    }
    assert_eq!(
        kind(
            crm.privacy()
                .record_consent(&w.reader, a.id, grant("newsletter", ConsentStatus::Granted))
                .await
        ),
        ErrorKind::Forbidden
    );
    assert_eq!(
        kind(
            crm.privacy()
                .record_consent(
                    &w.sales,
                    ContactId::generate(),
                    grant("newsletter", ConsentStatus::Granted)
                )
                .await
        ),
        ErrorKind::NotFound
    );
    for bad in ["Bad Purpose", "", "a,b,"] {
        assert_eq!(
            kind(crm.contacts().list(&w.reader, &by(bad)).await),
            ErrorKind::InvalidQuery,
            "{bad:?}"
        );
    }
    assert_eq!(w.get(&w.admin, a.id).await, before);
}

fn marked_contact_plain() -> ContactInput {
    ContactInput {
        first_name: "qxfirst".into(),
        last_name: "qxlast".into(),
        ..Default::default()
    }
}

/// The story's workspace id (for backends' own table scans).
pub fn workspace_of(s: &Story) -> Uuid {
    s.world.admin.workspace_id().uuid()
}

/// Each export, erasure and anonymization records exactly one event of its type — in the
/// store when the call answers (not only after a flush, and not again after one), in the
/// host's stream and in the counters — carrying the actor's address as the workspace's
/// client-details policy keeps it; an export's header carries the workspace's retention
/// periods.
pub async fn exports_and_erasures_record_one_event_each(f: Fixture) {
    let hook = Arc::new(super::security_suite::Collect::default());
    let config = crate::CrmConfig {
        security_hooks: vec![hook.clone()],
        ..crate::CrmConfig::default()
    };
    let w = super::suite::world_with(&f, config).await;
    let crm = &w.crm;
    let ws = w.admin.workspace_id();
    let policy = RetentionPolicy {
        trash_days: 7,
        audit_days: Some(3650),
        access_log_days: 90,
        security_event_days: 180,
        session_days: 14,
        webhook_delivery_days: 3,
        client_details: ClientDetails::Truncated,
    };
    let current = crm.configuration().get(&w.admin).await.unwrap();
    crm.configuration()
        .update(
            &w.admin,
            current.version,
            ConfigurationPatch {
                retention: Some(policy.clone()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let admin = w.admin.clone().with_origin(
        "GET /contacts/{id}/personal-data",
        Some("203.0.113.77".into()),
    );
    let c = w.create(&w.sales, marked_contact_plain()).await;
    let stored = |kind: SecurityEventType| async move {
        crm.storage()
            .security_events(
                ws,
                &SecurityEventQuery {
                    kind: Some(kind),
                    limit: 500,
                    ..Default::default()
                },
            )
            .await
            .unwrap()
    };
    let streamed = |kind: SecurityEventType| {
        hook.0
            .lock()
            .unwrap()
            .iter()
            .filter(|e| e.kind == kind)
            .count()
    };
    let counted = |kind: SecurityEventType| crm.log_counts().event_count(kind);
    use SecurityEventType::{ErasurePerformed as Erasure, ExportPerformed as Export};

    let doc = crm.privacy().export_contact(&admin, c.id).await.unwrap();
    let expected = crate::privacy::RetentionPeriods::from(&policy);
    assert_eq!(doc.header.retention, expected);
    let header = serde_json::to_value(&doc.header).unwrap();
    assert_eq!(header["retention"]["trash_days"], 7);
    assert_eq!(header["retention"]["audit_days"], 3650);
    assert_eq!(header["retention"]["client_details"], "truncated");
    assert!(
        header["retention"].get("webhook_delivery_days").is_none(),
        "no webhook deliveries are kept, so none is announced: {header}"
    );
    let events = stored(Export).await;
    assert_eq!(events.len(), 1, "one export, one event: {events:?}");
    assert_eq!(
        (streamed(Export), counted(Export)),
        (1, 1),
        "streamed and counted once"
    );
    let e = &events[0];
    assert_eq!(e.actor_id, Some(w.admin.user_id()));
    assert_eq!(e.detail["entity"], "contact");
    assert_eq!(e.detail["record_id"], c.id.uuid().to_string());
    assert_eq!(
        e.address.as_deref(),
        Some("203.0.113.0"),
        "the address, as the workspace keeps addresses"
    );

    let me = crm
        .privacy()
        .export_user(&w.sales, w.sales.user_id())
        .await
        .unwrap();
    assert_eq!(me.header.retention, expected);
    assert_eq!(stored(Export).await.len(), 2);
    assert_eq!((streamed(Export), counted(Export)), (2, 2));

    crm.privacy().erase_contact(&admin, c.id).await.unwrap();
    let events = stored(Erasure).await;
    assert_eq!(events.len(), 1, "one erasure, one event: {events:?}");
    assert_eq!((streamed(Erasure), counted(Erasure)), (1, 1));
    assert_eq!(events[0].detail["record_id"], c.id.uuid().to_string());
    crm.privacy()
        .anonymize_user(&w.admin, w.sales2.user_id())
        .await
        .unwrap();
    let events = stored(Erasure).await;
    assert_eq!(events.len(), 2);
    assert_eq!((streamed(Erasure), counted(Erasure)), (2, 2));
    assert_eq!(events[0].user_id, Some(w.sales2.user_id()));
    assert_eq!(events[0].detail["anonymized"], true);
    // A repeated erasure is one more call: one more event.
    let again = crm.privacy().erase_contact(&admin, c.id).await.unwrap();
    assert!(again.already_erased);
    assert_eq!(stored(Erasure).await.len(), 3);
    assert_eq!((streamed(Erasure), counted(Erasure)), (3, 3));

    // Nothing was queued besides: a flush writes no second copy.
    crm.flush_logs().await.unwrap();
    assert_eq!(stored(Export).await.len(), 2);
    assert_eq!(stored(Erasure).await.len(), 3);
    // Refused calls record nothing.
    let refusals = [
        kind(crm.privacy().export_contact(&w.sales, c.id).await),
        kind(crm.privacy().erase_contact(&w.manager, c.id).await),
        kind(
            crm.privacy()
                .erase_contact(&w.admin, ContactId::generate())
                .await,
        ),
    ];
    use ErrorKind::{Forbidden, NotFound};
    assert_eq!(refusals, [Forbidden, Forbidden, NotFound]);
    crm.flush_logs().await.unwrap();
    assert_eq!(stored(Export).await.len(), 2);
    assert_eq!(stored(Erasure).await.len(), 3);
    assert_eq!((streamed(Export), streamed(Erasure)), (2, 3));
}
