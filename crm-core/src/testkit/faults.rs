//! Fault injection: [`FailNth`], a hook that fails one chosen storage call (in an
//! [`Intercepted`] store), and the conformance test that drives a workload through it with a
//! failure at every call of every step in turn.
//!
//! The property checked (for every backend): a storage failure anywhere inside an operation
//! surfaces as a coded `E3xxx` error and leaves the stored state exactly as it was before the
//! operation — no operation is made of two commits that a failure could split.

#![allow(missing_docs, clippy::missing_panics_doc)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use async_trait::async_trait;
use uuid::Uuid;

use super::Fixture;
use super::identity_suite::{CollectingDelivery, SECRET, client, login_req};
use super::intercept::{Call, Hook, Intercepted};
use super::setup::{email, fast_passwords, with_role};
use super::suite::{
    NewRecord, company, company_deal, contact_note, contact_task, employee, retitle,
};
use crate::audit::AuditQuery;
use crate::error::{Error, ErrorKind, Result};
use crate::id::{Id, WorkspaceId};
use crate::identity::{Identity, IdentityConfig, Secret};
use crate::model::{DealInput, Entity, EntityKind, Role, TaskInput};
use crate::query::{Deleted, ListQuery, Sort};
use crate::service::Records;
use crate::storage::Storage;
use crate::{Actor, Crm, CrmConfig};

/// A [`Hook`] that lets every call through, except the one it is armed to fail: that call
/// returns a `StorageFailure` (E3xxx) without reaching the inner store. Wrap a store with it
/// in an [`Intercepted`].
pub struct FailNth {
    calls: AtomicU64,
    fail_at: AtomicU64,
    tripped: AtomicBool,
}

impl Default for FailNth {
    fn default() -> Self {
        Self::new()
    }
}

impl FailNth {
    /// A hook that fails nothing until armed.
    pub fn new() -> Self {
        FailNth {
            calls: AtomicU64::new(0),
            fail_at: AtomicU64::new(u64::MAX),
            tripped: AtomicBool::new(false),
        }
    }

    /// Fails the `n`-th call from now (0: the next one); `None` disarms.
    pub fn arm(&self, n: Option<u64>) {
        self.tripped.store(false, Ordering::SeqCst);
        let base = self.calls.load(Ordering::SeqCst);
        self.fail_at
            .store(n.map_or(u64::MAX, |n| base + n), Ordering::SeqCst);
    }

    /// Whether the armed failure happened.
    pub fn tripped(&self) -> bool {
        self.tripped.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl Hook for FailNth {
    async fn before(&self, _call: Call) -> Result<()> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst);
        if n == self.fail_at.load(Ordering::SeqCst) {
            self.tripped.store(true, Ordering::SeqCst);
            return Err(Error::new(ErrorKind::StorageFailure).with_source("injected fault"));
        }
        Ok(())
    }
}

/// Everything stored for a workspace (every kind, soft-deleted and internal records
/// included, and the audit log), as comparable JSON.
async fn snapshot(storage: &dyn Storage, ws: Option<WorkspaceId>) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let ids = storage.workspaces(1_000).await.unwrap();
    out.insert("workspaces".into(), format!("{ids:?}"));
    let Some(ws) = ws else { return out };
    for kind in EntityKind::ALL {
        let mut q = ListQuery::new(Sort::asc("created_at"), 100_000);
        q.deleted = Deleted::Include;
        let rows = storage.list(ws, kind, &q).await.unwrap();
        let mut rows: Vec<String> = rows
            .iter()
            .map(|r| serde_json::to_string(r).unwrap())
            .collect();
        rows.sort();
        out.insert(format!("{kind:?}"), rows.join("\n"));
    }
    let audit = storage
        .audit(
            ws,
            &AuditQuery {
                limit: Some(100_000),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    out.insert("audit".into(), format!("{} entries", audit.len()));
    out.insert(
        "audit ids".into(),
        audit
            .iter()
            .map(|e| e.id.to_string())
            .collect::<Vec<_>>()
            .join(","),
    );
    out
}

/// What the workload has built so far (updated only by steps that succeeded).
#[derive(Default)]
struct Ctx {
    ws: Option<WorkspaceId>,
    admin: Option<crate::id::UserId>,
    ids: BTreeMap<&'static str, Uuid>,
    refresh: Option<String>,
    session: Option<crate::model::SessionId>,
}

impl Ctx {
    fn id<T>(&self, name: &str) -> Id<T> {
        Id::from_uuid(self.ids[name])
    }
}

/// Creates `input` as `actor` and then (only then) keeps the new record's id in `ctx` as
/// `name`.
async fn create<I: NewRecord>(
    crm: &Crm,
    actor: &Actor,
    ctx: &mut Ctx,
    name: &'static str,
    input: I,
) -> Result<()> {
    let record = Records::<I::Record>::new(crm).create(actor, input).await?;
    ctx.ids.insert(name, record.meta().id);
    Ok(())
}

/// Runs step `i` of the workload; `Ok(false)` when there is none.
///
/// Each step assigns to `ctx` only after its last fallible call, so a failed step can be
/// run again as if for the first time.
async fn step(i: usize, crm: &Crm, identity: &Identity, ctx: &mut Ctx) -> Result<bool> {
    if i == 0 {
        let (ws, tokens) = identity
            .sign_up(
                "Faulty",
                email("admin@faulty.test"),
                "admin password",
                client(),
            )
            .await?;
        ctx.ws = Some(ws.id);
        ctx.admin = Some(tokens.user.id);
        return Ok(true);
    }
    // Resolving the actor reads storage too: part of every step.
    let admin: Actor = crm.actor(ctx.ws.unwrap(), ctx.admin.unwrap()).await?;
    let admin = &admin;
    match i {
        1 => {
            let u = crm
                .users()
                .create(admin, with_role("sales@faulty.test", Role::Sales))
                .await?;
            ctx.ids.insert("sales", u.id.uuid());
        }
        2 => create(crm, admin, ctx, "company", company("Initech")).await?,
        3 | 4 => {
            let name = if i == 3 { "winner" } else { "loser" };
            let input = employee(ctx.id("company"), name, "Lumbergh");
            create(crm, admin, ctx, name, input).await?;
        }
        5 => {
            let input = DealInput {
                contact_ids: vec![ctx.id("loser")],
                amount: 10_000,
                ..company_deal(ctx.id("company"), "TPS reports")
            };
            create(crm, admin, ctx, "deal", input).await?;
        }
        6 => {
            let input = contact_note(ctx.id("loser"), "Called about the stapler");
            create(crm, admin, ctx, "note", input).await?;
        }
        7 => {
            let input = TaskInput {
                owner_id: Some(ctx.id("sales")),
                ..contact_task(ctx.id("loser"), "Follow up")
            };
            create(crm, admin, ctx, "task", input).await?;
        }
        8 => {
            let v = crm.contacts().get(admin, ctx.id("winner")).await?.version;
            let patch = retitle("Boss");
            crm.contacts()
                .update(admin, ctx.id("winner"), v, patch)
                .await?;
        }
        9 => {
            crm.contacts()
                .merge(admin, ctx.id("winner"), ctx.id("loser"))
                .await?;
        }
        10 => {
            let d = crm.deals().get(admin, ctx.id("deal")).await?;
            crm.deals()
                .move_to(admin, d.id, d.version, "won", 0)
                .await?;
        }
        11 => {
            let t = crm.tasks().get(admin, ctx.id("task")).await?;
            crm.tasks().complete(admin, t.id, t.version, true).await?;
        }
        12 => crm.notes().delete(admin, ctx.id("note")).await?,
        13 => {
            crm.notes().restore(admin, ctx.id("note")).await?;
        }
        14 => {
            let tokens = identity
                .login(login_req(
                    ctx.ws.unwrap(),
                    "admin@faulty.test",
                    "admin password",
                ))
                .await?;
            ctx.refresh = Some(tokens.refresh_token.expose().to_owned());
            ctx.session = Some(tokens.session_id);
        }
        15 => {
            let tokens = identity
                .refresh(ctx.refresh.as_deref().unwrap(), &client())
                .await?;
            ctx.refresh = Some(tokens.refresh_token.expose().to_owned());
        }
        16 => {
            identity.logout(admin, ctx.session.unwrap()).await?;
        }
        17 => {
            identity
                .change_password(admin, None, "admin password", "new password")
                .await?;
        }
        _ => return Ok(false),
    }
    Ok(true)
}

pub async fn every_storage_failure_is_coded_and_changes_nothing(f: Fixture) {
    let faulty = Arc::new(Intercepted::new(f.storage.clone(), FailNth::new()));
    let crm = Crm::new(faulty.clone(), CrmConfig::default());
    let faults = faulty.hook();
    let mut config = IdentityConfig::new(Secret::new(SECRET.to_vec()));
    config.password = fast_passwords(2, 64);
    config.refresh_grace = std::time::Duration::ZERO;
    let plenty = crate::ratelimit::Quota::per_minute(100_000);
    config.rate_limits = crate::ratelimit::RateLimitConfig {
        user: plenty,
        address: plenty,
        login: plenty,
        refresh: plenty,
        password_reset: plenty,
        ..Default::default()
    };
    let identity =
        Identity::new(crm.clone(), config, Arc::new(CollectingDelivery::default())).unwrap();
    let mut ctx = Ctx::default();
    let mut injected = 0;
    for i in 0.. {
        let before = snapshot(f.storage.as_ref(), ctx.ws).await;
        let mut n = 0;
        let more = loop {
            faults.arm(Some(n));
            let outcome = step(i, &crm, &identity, &mut ctx).await;
            let tripped = faults.tripped();
            faults.arm(None);
            if !tripped {
                // The step made fewer than n + 1 calls: this run had no failure.
                break outcome.unwrap_or_else(|e| panic!("step {i} failed unfaulted: {e:?}"));
            }
            match outcome {
                Err(e) => {
                    injected += 1;
                    assert!(
                        e.code().starts_with("E3"),
                        "step {i}, failure at call {n}: {} is not a storage error",
                        e.code()
                    );
                    let after = snapshot(f.storage.as_ref(), ctx.ws).await;
                    assert_eq!(
                        before, after,
                        "step {i}, failure at call {n} changed the stored state"
                    );
                }
                // A call whose failure the core tolerates (best effort): the step succeeded.
                Ok(more) => break more,
            }
            n += 1;
        };
        if !more {
            break;
        }
    }
    assert!(injected > 40, "only {injected} failures injected");
}
