//! Users and the workspace: unique e-mails, roles, the last admin (also under racing
//! demotions), disabled users, configuration.

use super::{World, deal, kind, user, world};
use crate::error::{ErrorKind, FieldIssue};
use crate::id::UserId;
use crate::model::*;
use crate::query::ListParams;
use crate::testkit::Fixture;
use crate::testkit::setup::email;
use crate::{Actor, Crm, Result};

/// The kind of error disabling `target` as `actor` fails with.
async fn disable_error(crm: &Crm, actor: &Actor, target: &User) -> ErrorKind {
    kind(
        crm.users()
            .set_disabled(actor, target.id, target.version, true)
            .await,
    )
}

/// Applies `patch` to the configuration at `version` as the admin.
async fn configure(w: &World, version: u64, patch: ConfigurationPatch) -> Result<Configuration> {
    w.crm.configuration().update(&w.admin, version, patch).await
}

pub async fn user_rules_and_last_admin(f: Fixture) {
    let w = world(&f).await;
    let crm = &w.crm;
    let err = crm
        .users()
        .create(&w.admin, user("SALES@acme.test", Role::Sales))
        .await
        .unwrap_err();
    assert_eq!(
        err.kind(),
        ErrorKind::Duplicate,
        "emails are unique case-insensitively"
    );
    assert_eq!(err.fields()[0].field, "email");
    assert_eq!(
        crm.users()
            .find_by_email(&w.reader, "Sales@Acme.test")
            .await
            .unwrap()
            .id,
        w.sales.user_id()
    );
    let created = crm
        .users()
        .create(&w.admin, email("plain@acme.test"))
        .await
        .unwrap();
    assert_eq!(created.role, Role::Sales, "role defaults to sales");
    let me = crm.users().get(&w.admin, w.admin.user_id()).await.unwrap();
    let err = crm
        .users()
        .set_role(&w.admin, me.id, me.version, Role::Sales)
        .await
        .unwrap_err();
    assert_eq!(
        (err.kind(), err.fields()[0].issue),
        (ErrorKind::Forbidden, FieldIssue::ReadOnly),
        "nobody changes their own role"
    );
    assert_eq!(
        disable_error(crm, &w.admin, &me).await,
        ErrorKind::Forbidden
    );
    // Promote the manager; the change applies to its next request.
    let (m, new_admin) = w.set_role(&w.manager, Role::Admin).await;
    assert_eq!(new_admin.role(), Role::Admin);
    // Two admins: one may demote the other.
    let me = crm
        .users()
        .set_role(&new_admin, me.id, me.version, Role::Manager)
        .await
        .unwrap();
    assert_eq!(me.role, Role::Manager);
    // Now `m` is the last active admin: even an actor still holding an admin snapshot from
    // before its demotion cannot demote or disable it.
    let err = crm
        .users()
        .set_role(&w.admin, m.id, m.version, Role::Sales)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::LastAdmin);
    assert_eq!(err.to_string(), "Unable to save user (E5004)");
    assert_eq!(disable_error(crm, &w.admin, &m).await, ErrorKind::LastAdmin);
    assert_eq!(
        crm.users().get(&new_admin, m.id).await.unwrap(),
        m,
        "nothing changed"
    );
    // Disabling an ordinary user works and takes effect at once.
    let s = crm
        .users()
        .get(&new_admin, w.sales.user_id())
        .await
        .unwrap();
    let s = crm
        .users()
        .set_disabled(&new_admin, s.id, s.version, true)
        .await
        .unwrap();
    assert_eq!(
        kind(crm.actor(s.workspace_id, s.id).await),
        ErrorKind::AccountDisabled
    );
    let s = crm
        .users()
        .set_disabled(&new_admin, s.id, s.version, false)
        .await
        .unwrap();
    crm.actor(s.workspace_id, s.id).await.unwrap();
    // A stale version is a conflict for user changes too.
    assert_eq!(
        kind(
            crm.users()
                .set_role(&new_admin, s.id, 1, Role::Manager)
                .await
        ),
        ErrorKind::VersionConflict
    );
}

pub async fn concurrent_demotions_keep_an_admin(f: Fixture) {
    let w = world(&f).await;
    let crm = &w.crm;
    let (m, second) = w.set_role(&w.manager, Role::Admin).await;
    let first = crm.users().get(&w.admin, w.admin.user_id()).await.unwrap();
    for _ in 0..3 {
        // The two admins act through two instances (one, unless the backend has a peer).
        let (users, peer_users) = (crm.users(), w.peer.users());
        let (a, b) = tokio::join!(
            users.set_role(&w.admin, m.id, m.version, Role::Sales),
            peer_users.set_role(&second, first.id, first.version, Role::Sales),
        );
        let oks = [a.is_ok(), b.is_ok()].iter().filter(|x| **x).count();
        let admins = crm
            .users()
            .list(&w.reader, &ListParams::new().filter("role", "admin"))
            .await
            .unwrap()
            .data;
        assert!(!admins.is_empty(), "an admin always remains");
        assert!(oks <= 1);
        if oks == 1 {
            for e in [a, b].into_iter().filter_map(|r| r.err()) {
                assert!(
                    matches!(e.kind(), ErrorKind::VersionConflict | ErrorKind::LastAdmin),
                    "{e:?}"
                );
            }
            return;
        }
    }
    panic!("one of the demotions should succeed");
}

pub async fn disabled_user_cannot_act(f: Fixture) {
    let w = world(&f).await;
    let s = w
        .crm
        .users()
        .get(&w.admin, w.sales.user_id())
        .await
        .unwrap();
    w.crm
        .users()
        .set_disabled(&w.admin, s.id, s.version, true)
        .await
        .unwrap();
    assert_eq!(
        kind(w.crm.actor(s.workspace_id, s.id).await),
        ErrorKind::AccountDisabled
    );
    assert_eq!(
        kind(w.crm.actor(s.workspace_id, UserId::generate()).await),
        ErrorKind::Unauthenticated
    );
    let still_listed = w
        .crm
        .users()
        .list(&w.admin, &ListParams::new().filter("disabled", true))
        .await
        .unwrap()
        .data;
    assert_eq!(still_listed.len(), 1, "users are disabled, never deleted");
}

pub async fn configuration_is_admin_only_and_validated(f: Fixture) {
    let w = world(&f).await;
    let cfg = w.crm.configuration().get(&w.reader).await.unwrap();
    let err = configure(
        &w,
        cfg.version,
        ConfigurationPatch {
            deal_stages: Some(vec![]),
            currency: Some("dollars".into()),
            note_statuses: Some(vec![NoteStatus {
                value: "x".into(),
                label: "X".into(),
                color: "blue".into(),
            }]),
            ..Default::default()
        },
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Validation);
    let fields: Vec<&str> = err.fields().iter().map(|f| f.field.as_str()).collect();
    assert!(
        fields.contains(&"deal_stages")
            && fields.contains(&"currency")
            && fields.contains(&"note_statuses[0].color"),
        "{fields:?}"
    );
    let stages = vec![
        DealStage {
            value: "new".into(),
            label: "New".into(),
        },
        DealStage {
            value: "done".into(),
            label: "Done".into(),
        },
    ];
    let cfg2 = configure(
        &w,
        cfg.version,
        ConfigurationPatch {
            deal_stages: Some(stages),
            deal_pipeline_closed: Some(vec!["done".into()]),
            currency: Some("EUR".into()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(cfg2.version, cfg.version + 1);
    let d = w.create(&w.sales, deal("x")).await;
    assert_eq!(d.stage, "new");
    // The stage is one of the configured ones ("won" is not any more).
    let in_old_stage = DealInput {
        stage: Some("won".into()),
        ..deal("y")
    };
    assert_eq!(
        w.create_error(&w.sales, in_old_stage).await,
        ErrorKind::Validation
    );
}
