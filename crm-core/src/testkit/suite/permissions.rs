//! Who may do what: the role matrix, own-only tasks, and workspaces that never see each
//! other.

use super::{
    company, contact, first_name, kind, last_name, reassign, retitle, rewrite_task, tag, task,
    task_for, user, world,
};
use crate::audit::AuditQuery;
use crate::error::ErrorKind;
use crate::model::*;
use crate::query::{Deleted, ListParams};
use crate::testkit::Fixture;
use crate::testkit::setup::latest_audit;

pub async fn permission_matrix_is_enforced(f: Fixture) {
    let w = world(&f).await;
    let crm = &w.crm;
    // Records: everyone reads; read_only cannot write.
    let c = w.create(&w.sales, contact("Shared", "Record")).await;
    for a in [&w.admin, &w.manager, &w.sales, &w.reader] {
        w.get(a, c.id).await;
        crm.companies().list(a, &ListParams::new()).await.unwrap();
        crm.users().list(a, &ListParams::new()).await.unwrap();
        crm.configuration().get(a).await.unwrap();
        crm.activity().list(a, None, 10).await.unwrap();
    }
    let read_only_writes = [
        (
            "create a contact",
            w.create_error(&w.reader, contact("No", "Way")).await,
        ),
        (
            "create a company",
            w.create_error(&w.reader, company("Nope")).await,
        ),
        ("create a tag", w.create_error(&w.reader, tag("x")).await),
        (
            "update a contact",
            w.update_error(&w.reader, c.id, 1, ContactPatch::default())
                .await,
        ),
        (
            "delete a contact",
            kind(crm.contacts().delete(&w.reader, c.id).await),
        ),
    ];
    for (what, error) in read_only_writes {
        assert_eq!(error, ErrorKind::Forbidden, "read_only may not {what}");
    }
    let c = w.update(&w.manager, c.id, 1, retitle("M")).await;
    // Restore and purge: admin only; merge: admin and manager; trash listing follows restore.
    crm.contacts().delete(&w.sales, c.id).await.unwrap();
    for a in [&w.manager, &w.sales, &w.reader] {
        assert_eq!(
            kind(crm.contacts().restore(a, c.id).await),
            ErrorKind::Forbidden,
            "{:?}",
            a.role()
        );
        assert_eq!(
            kind(crm.contacts().purge(a, c.id).await),
            ErrorKind::Forbidden
        );
        assert_eq!(
            kind(
                crm.contacts()
                    .list(a, &ListParams::new().deleted(Deleted::Only))
                    .await
            ),
            ErrorKind::Forbidden
        );
    }
    assert_eq!(
        w.list::<Contact>(&w.admin, &ListParams::new().deleted(Deleted::Only))
            .await
            .len(),
        1
    );
    crm.contacts().restore(&w.admin, c.id).await.unwrap();
    let other = w.create(&w.sales, contact("Dup", "Record")).await;
    for a in [&w.sales, &w.reader] {
        assert_eq!(
            kind(crm.contacts().merge(a, c.id, other.id).await),
            ErrorKind::Forbidden
        );
    }
    crm.contacts()
        .merge(&w.manager, c.id, other.id)
        .await
        .unwrap();
    // Audit: admin and manager.
    w.audit(AuditQuery::default()).await;
    crm.audit()
        .list(&w.manager, &AuditQuery::default())
        .await
        .unwrap();
    assert_eq!(
        kind(crm.audit().list(&w.sales, &AuditQuery::default()).await),
        ErrorKind::Forbidden
    );
    assert_eq!(
        kind(crm.audit().list(&w.reader, &AuditQuery::default()).await),
        ErrorKind::Forbidden
    );
    // Configuration: admin only.
    for a in [&w.manager, &w.sales, &w.reader] {
        assert_eq!(
            kind(
                crm.configuration()
                    .update(a, 1, ConfigurationPatch::default())
                    .await
            ),
            ErrorKind::Forbidden
        );
    }
    // Users: admins administer; everyone updates their own profile only.
    for a in [&w.manager, &w.sales, &w.reader] {
        assert_eq!(
            kind(
                crm.users()
                    .create(a, user("new@acme.test", Role::Sales))
                    .await
            ),
            ErrorKind::Forbidden
        );
        let target = crm.users().get(a, w.sales2.user_id()).await.unwrap();
        assert_eq!(
            kind(
                crm.users()
                    .set_role(a, target.id, target.version, Role::Admin)
                    .await
            ),
            ErrorKind::Forbidden
        );
        assert_eq!(
            kind(
                crm.users()
                    .set_disabled(a, target.id, target.version, true)
                    .await
            ),
            ErrorKind::Forbidden
        );
        assert_eq!(
            kind(
                crm.users()
                    .update_profile(a, target.id, target.version, first_name("X"))
                    .await
            ),
            ErrorKind::Forbidden
        );
        let me = crm.users().get(a, a.user_id()).await.unwrap();
        crm.users()
            .update_profile(a, me.id, me.version, last_name("Renamed"))
            .await
            .unwrap();
    }
    let target = crm.users().get(&w.admin, w.sales2.user_id()).await.unwrap();
    crm.users()
        .update_profile(&w.admin, target.id, target.version, first_name("Y"))
        .await
        .unwrap();
}

pub async fn tasks_are_own_only_for_sales_and_read_only(f: Fixture) {
    let w = world(&f).await;
    let crm = &w.crm;
    let mine = w.create(&w.sales, task("mine")).await;
    let theirs = w.create(&w.sales2, task("theirs")).await;
    let readers = w
        .create(&w.manager, task_for(w.reader.user_id(), "for reader"))
        .await;
    let listed: Vec<_> = w
        .list::<Task>(&w.sales, &ListParams::new())
        .await
        .into_iter()
        .map(|t| t.id)
        .collect();
    assert_eq!(listed, vec![mine.id]);
    // Asking for someone else's tasks by filter still shows only one's own.
    let filtered = crm
        .tasks()
        .list(
            &w.sales,
            &ListParams::new().filter("owner_id", w.sales2.user_id()),
        )
        .await
        .unwrap();
    assert!(filtered.data.is_empty());
    // Others' tasks do not exist: 404, not 403.
    let on_theirs = [
        ("get", kind(crm.tasks().get(&w.sales, theirs.id).await)),
        (
            "update",
            w.update_error(&w.sales, theirs.id, 1, TaskPatch::default())
                .await,
        ),
        (
            "delete",
            kind(crm.tasks().delete(&w.sales, theirs.id).await),
        ),
        (
            "complete",
            kind(crm.tasks().complete(&w.sales, theirs.id, 1, true).await),
        ),
    ];
    for (what, error) in on_theirs {
        assert_eq!(error, ErrorKind::NotFound, "{what} another's task");
    }
    // Sales cannot hand tasks to others, nor create them for others.
    assert_eq!(
        w.update_error(&w.sales, mine.id, 1, reassign(w.sales2.user_id()))
            .await,
        ErrorKind::Forbidden
    );
    assert_eq!(
        w.create_error(&w.sales, task_for(w.sales2.user_id(), "x"))
            .await,
        ErrorKind::Forbidden
    );
    // Read-only users read their own tasks and nothing else, and change none.
    assert_eq!(w.list::<Task>(&w.reader, &ListParams::new()).await.len(), 1);
    w.get(&w.reader, readers.id).await;
    assert_eq!(
        kind(crm.tasks().get(&w.reader, mine.id).await),
        ErrorKind::NotFound
    );
    assert_eq!(
        kind(crm.tasks().complete(&w.reader, readers.id, 1, true).await),
        ErrorKind::Forbidden
    );
    assert_eq!(
        w.create_error(&w.reader, task("x")).await,
        ErrorKind::Forbidden
    );
    // Managers and admins see everyone's.
    assert_eq!(
        w.list::<Task>(&w.manager, &ListParams::new()).await.len(),
        3
    );
    w.update(&w.admin, theirs.id, 1, rewrite_task("edited by admin"))
        .await;
}

pub async fn workspaces_are_isolated(f: Fixture) {
    let a = world(&f).await;
    let b = a.other("Beta").await;
    let ca = a.create(&a.admin, contact("Alpha", "Person")).await;
    let cb = b.create(&b.admin, contact("Alpha", "Person")).await;
    b.create(&b.admin, company("Alpha Corp")).await;
    b.create(&b.admin, task("beta task")).await;
    let la = a.list::<Contact>(&a.admin, &ListParams::new()).await;
    assert_eq!(la.iter().map(|c| c.id).collect::<Vec<_>>(), vec![ca.id]);
    assert!(
        a.list::<Company>(&a.admin, &ListParams::new())
            .await
            .is_empty()
    );
    assert!(
        a.list::<Task>(&a.admin, &ListParams::new())
            .await
            .is_empty()
    );
    let s = a.crm.search(&a.admin, "alpha", 10).await.unwrap();
    assert_eq!(s.contacts.len(), 1);
    assert!(s.companies.is_empty());
    assert_eq!(
        kind(a.crm.contacts().get(&a.admin, cb.id).await),
        ErrorKind::NotFound
    );
    let audit = latest_audit(&a.crm, &a.admin).await;
    assert!(
        audit
            .iter()
            .all(|e| e.workspace_id == a.admin.workspace_id())
    );
    assert!(audit.iter().all(|e| e.record_id != cb.id.uuid()));
    // Same email in two workspaces is fine; users lists are separate.
    assert_eq!(
        a.crm
            .users()
            .list(&a.admin, &ListParams::new())
            .await
            .unwrap()
            .data
            .len(),
        5
    );
}
