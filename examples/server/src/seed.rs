//! `crm-server seed`: realistic demo data in the installation's workspace, written in large
//! commits by [`crm_core::demo`] (every record valid, linked and audited as the services
//! would write it). If the store has no workspace yet, the workspace and its admin (with
//! the given password) are created first, with four sales users to own records.

use std::sync::Arc;
use std::time::Instant;

use crm_core::demo::{Volume, seed};
use crm_core::identity::{Identity, IdentityConfig, PasswordConfig, Secret};
use crm_core::model::{ClientInfo, EntityKind, Record, UserInput};
use crm_core::{Crm, CrmConfig, ListParams};

use crate::BoxError;
use crate::cli::SeedArgs;
use crate::serve::PrintResetLink;
use crate::store::OpenStore;

/// Runs the seed command.
///
/// # Errors
/// The store cannot be opened; a new workspace needs `--admin-password`; the admin email is
/// not a user of an existing workspace; a write fails.
pub async fn run(args: SeedArgs) -> Result<(), BoxError> {
    crate::logging::init(&args.log)?;
    let store = OpenStore::open(&args.store, false).await?;
    let outcome = fill(&args, &store).await;
    store.close().await?;
    outcome
}

async fn fill(args: &SeedArgs, store: &OpenStore) -> Result<(), BoxError> {
    let storage = store.storage();
    let crm = Crm::new(storage.clone(), CrmConfig::default());
    let existing = storage
        .workspaces(1)
        .await
        .map_err(|e| crate::chain(&e))?
        .into_iter()
        .next();
    let (workspace, admin) = match existing {
        Some(ws) => {
            let record = storage
                .find_unique(
                    ws,
                    EntityKind::User,
                    "email",
                    &args.admin_email.to_lowercase(),
                )
                .await
                .map_err(|e| crate::chain(&e))?;
            let Some(Record::User(user)) = record else {
                return Err(format!(
                    "{} is not a user of the installation's workspace {ws}",
                    args.admin_email
                )
                .into());
            };
            println!("adding to workspace {ws}");
            (ws, user.id)
        }
        None => {
            let password = args.admin_password.as_deref().ok_or(
                "the store has no workspace yet: give --admin-password (or CRM_SEED_ADMIN_PASSWORD) for its admin",
            )?;
            // Only the password hash matters here; the session this opens is discarded.
            let mut key = vec![0u8; 32];
            getrandom::fill(&mut key).map_err(|e| format!("no randomness: {e}"))?;
            let mut config = IdentityConfig::new(Secret::new(key));
            config.password = PasswordConfig {
                cost: args.bcrypt_cost,
                ..PasswordConfig::default()
            };
            let identity = Identity::new(
                crm.clone(),
                config,
                Arc::new(PrintResetLink {
                    link: String::new(),
                }),
            )
            .map_err(|e| crate::chain(&e))?;
            let (ws, tokens) = identity
                .sign_up(
                    &args.workspace_name,
                    UserInput {
                        email: args.admin_email.clone(),
                        first_name: "Demo".into(),
                        last_name: "Admin".into(),
                        ..Default::default()
                    },
                    password,
                    ClientInfo::default(),
                )
                .await
                .map_err(|e| crate::chain(&e))?;
            let admin = tokens.user.id;
            let actor = crm
                .actor(ws.id, admin)
                .await
                .map_err(|e| crate::chain(&e))?;
            crm_core::demo::add_sales_users(&crm, &actor, domain(&args.admin_email), 4)
                .await
                .map_err(|e| crate::chain(&e))?;
            println!(
                "created workspace {} ({}) with admin {}",
                ws.id, ws.name, args.admin_email
            );
            (ws.id, admin)
        }
    };
    let actor = crm
        .actor(workspace, admin)
        .await
        .map_err(|e| crate::chain(&e))?;
    let users = crm
        .users()
        .list(&actor, &ListParams::new().limit(100))
        .await
        .map_err(|e| crate::chain(&e))?;
    let owners: Vec<_> = users
        .data
        .iter()
        .filter(|u| !u.disabled)
        .map(|u| u.id)
        .collect();
    let volume = Volume {
        companies: args.companies,
        contacts: args.contacts,
        deals: args.deals,
        tasks: args.tasks,
        notes: args.notes,
    };
    let started = Instant::now();
    seed(storage.as_ref(), workspace, &owners, volume, args.seed)
        .await
        .map_err(|e| crate::chain(&e))?;
    if let OpenStore::Postgres(pg) = store {
        // Fresh statistics, so that the planner knows the tables are no longer empty.
        pg.analyze().await.map_err(|e| crate::chain(&e))?;
    }
    println!(
        "seeded {} companies, {} contacts, {} deals, {} tasks, {} notes in {:.1} s",
        volume.companies,
        volume.contacts,
        volume.deals,
        volume.tasks,
        volume.notes,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// The domain of an email address (`example.com` if it has none).
fn domain(email: &str) -> &str {
    email.rsplit_once('@').map_or("example.com", |(_, d)| d)
}
