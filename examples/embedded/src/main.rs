//! # Embedding `crm` in a Rust program
//!
//! This binary is the shortest complete tour of the engine as a library: no server, no
//! database to install — one redb file in a directory of your choosing. Run it with
//!
//! ```text
//! cargo run -p crm-example-embedded                  # data in <temp dir>/crm-example-embedded
//! cargo run -p crm-example-embedded -- ./my-data     # data in ./my-data
//! ```
//!
//! Each step below is one numbered section of `run` and of the printed output:
//!
//! 1. **Open the store and build the engine.** [`RedbStore::open`] opens (or creates)
//!    `crm.redb` in the data directory. redb is synchronous; the store runs reads on Tokio's
//!    blocking pool and writes on its own writer thread, which batches concurrent commits
//!    into one fsync (group commit) — so every call needs a Tokio runtime, hence
//!    `#[tokio::main]`. [`Crm::new`] takes any `Arc<dyn Storage>` (swapping the backend is
//!    this one line) and a [`CrmConfig`].
//! 2. **Bootstrap a workspace.** [`Crm::bootstrap`] creates a workspace (a tenant: nothing is
//!    ever read or written across workspaces), its default configuration (deal stages,
//!    contact statuses, task types, ...) and its first user, who is always its admin.
//!    Every operation then runs as an [`Actor`](crm_core::Actor), resolved with
//!    [`Crm::actor`]: its role decides what it may do. The admin adds two team mates, a
//!    sales user and a read-only user.
//! 3. **Companies and contacts.** `crm.companies().create(..)` and
//!    `crm.contacts().create(..)` validate the input (every failing field is reported at
//!    once), check references (a contact's `company_id` must exist) and write the record, its
//!    search words and its audit entry in one atomic commit.
//! 4. **Deals in stages.** New deals enter the first stage of the pipeline;
//!    `crm.deals().move_to(..)` moves one to another stage (and position), checked against
//!    the version the caller read (optimistic concurrency). The board is one filtered list
//!    per stage.
//! 5. **Tasks.** Tasks belong to a user; sales and read-only users only ever see their own.
//!    `crm.tasks().complete(..)` marks one done.
//! 6. **A note.** A note on a contact moves the contact's `last_seen` forward and sets its
//!    status — in the same commit as the note.
//! 7. **Search.** [`Crm::search`] matches word prefixes (and substrings of emails and phone
//!    numbers) across companies, contacts and deals.
//! 8. **A filtered list.** Lists take filters, a sort and a page size through
//!    [`ListParams`], and page by cursor (`next_cursor`).
//! 9. **Errors.** Every error has a stable code and a user-facing message
//!    (`Unable to save contact (E2001)`); validation errors list each failing field.
//! 10. **The audit trail.** Every change above was recorded with who, when and what changed.
//!
//! The program exits with status 0 when every step succeeded, 1 otherwise (the error's
//! message goes to stderr).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use crm_core::audit::{AuditAction, AuditQuery};
use crm_core::model::{
    Company, CompanyInput, Contact, ContactInput, Deal, DealInput, EmailEntry, EmailKind,
    NoteInput, PhoneEntry, PhoneKind, Priority, Role, TaskInput, UserInput,
};
use crm_core::{Crm, CrmConfig, ErrorKind, ListParams};
use crm_store_redb::RedbStore;

/// What [`run`] can fail with: an engine error or a failed write to the output.
type AnyResult<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// One day, for due dates.
const DAY: Duration = Duration::from_secs(24 * 60 * 60);

#[tokio::main]
async fn main() -> ExitCode {
    let data_dir = std::env::args_os()
        .nth(1)
        .map_or_else(default_data_dir, PathBuf::from);
    let mut out = std::io::stdout().lock();
    match run(&data_dir, &mut out).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // `Display` of a crm error is its user-facing message; `Debug` adds the detail
            // (kind, fields, underlying cause) a developer needs.
            eprintln!("error: {e}");
            eprintln!("detail: {e:?}");
            ExitCode::FAILURE
        }
    }
}

/// Where the data goes when no directory is given: a fixed directory under the system's
/// temp dir, so repeated runs reuse (and show off reopening) the same file without
/// littering the working tree.
fn default_data_dir() -> PathBuf {
    std::env::temp_dir().join("crm-example-embedded")
}

/// Runs the whole tour against the store in `data_dir` (created if missing), printing to
/// `out`.
///
/// Each run bootstraps a new workspace, so running it again on the same directory adds a
/// second, fully separate workspace to the same file and prints the same story.
///
/// # Errors
/// An I/O error if `data_dir` cannot be created; `StorageUnavailable` (E3001) if the store
/// cannot be opened (e.g. another process has the file open); any other engine error; a
/// failed write to `out`.
async fn run(data_dir: &Path, out: &mut impl Write) -> AnyResult<()> {
    // 1. Open the store (creating the file if needed) and build the engine over it.
    std::fs::create_dir_all(data_dir)?;
    let path = data_dir.join("crm.redb");
    let store = RedbStore::open(&path)?;
    writeln!(out, "crm embedded example")?;
    writeln!(out, "1. Opened the store at {}", path.display())?;

    let crm = Crm::new(Arc::new(store), CrmConfig::default());

    // 2. A workspace, its admin, and two team mates.
    let (workspace, admin) = crm
        .bootstrap("Acme Inc.", user("ada@acme.test", "Ada", "Lovelace", None))
        .await?;
    let actor = crm.actor(workspace.id, admin.id).await?;
    let sales = crm
        .users()
        .create(
            &actor,
            user("sam@acme.test", "Sam", "Seller", Some(Role::Sales)),
        )
        .await?;
    let reader = crm
        .users()
        .create(
            &actor,
            user("rita@acme.test", "Rita", "Reader", Some(Role::ReadOnly)),
        )
        .await?;
    writeln!(out, "2. Workspace \"{}\" created", workspace.name)?;
    for user in [&admin, &sales, &reader] {
        writeln!(
            out,
            "   - {} {} <{}> ({})",
            user.first_name,
            user.last_name,
            user.email,
            user.role.as_str()
        )?;
    }

    // 3. Companies and the people who work there.
    writeln!(out, "3. Companies and contacts")?;
    let globex = crm
        .companies()
        .create(
            &actor,
            company("Globex Corporation", "Energy", "Springfield"),
        )
        .await?;
    let initech = crm
        .companies()
        .create(
            &actor,
            company("Initech", "Information Technology", "Austin"),
        )
        .await?;
    for c in [&globex, &initech] {
        writeln!(
            out,
            "   - {} ({}, {})",
            c.name,
            c.sector.as_deref().unwrap_or("-"),
            c.city.as_deref().unwrap_or("-")
        )?;
    }
    let grace = crm
        .contacts()
        .create(
            &actor,
            contact(
                "Grace",
                "Hopper",
                "CTO",
                &globex,
                "grace@globex.test",
                "warm",
            ),
        )
        .await?;
    let alan = crm
        .contacts()
        .create(
            &actor,
            contact(
                "Alan",
                "Turing",
                "Researcher",
                &globex,
                "alan@globex.test",
                "cold",
            ),
        )
        .await?;
    let peter = crm
        .contacts()
        .create(
            &actor,
            contact(
                "Peter",
                "Gibbons",
                "Engineer",
                &initech,
                "peter@initech.test",
                "hot",
            ),
        )
        .await?;
    let milton = crm
        .contacts()
        .create(
            &actor,
            contact(
                "Milton",
                "Waddams",
                "Collator",
                &initech,
                "milton@initech.test",
                "cold",
            ),
        )
        .await?;
    for c in [&grace, &alan, &peter, &milton] {
        writeln!(out, "   - {}", describe_contact(c))?;
    }

    // 4. Deals: new ones enter the first stage; move some along the pipeline.
    writeln!(out, "4. Deals by stage")?;
    let config = crm.configuration().get(&actor).await?;
    let website = crm
        .deals()
        .create(&actor, deal("Globex website", &globex, &grace, 1_200_000))
        .await?;
    let print = crm
        .deals()
        .create(
            &actor,
            deal("Initech TPS reports", &initech, &peter, 350_000),
        )
        .await?;
    let _copy = crm
        .deals()
        .create(&actor, deal("Globex brochure", &globex, &alan, 80_000))
        .await?;
    let website = crm
        .deals()
        .move_to(&actor, website.id, website.version, "proposal-sent", 0)
        .await?;
    let _print = crm
        .deals()
        .move_to(&actor, print.id, print.version, "won", 0)
        .await?;
    // The board: one filtered, ordered list per stage.
    for stage in &config.deal_stages {
        let page = crm
            .deals()
            .list(
                &actor,
                &ListParams::new()
                    .filter("stage", &stage.value)
                    .sort("index"),
            )
            .await?;
        if page.data.is_empty() {
            continue;
        }
        let names: Vec<String> = page
            .data
            .iter()
            .map(|d| describe_deal(d, &config.currency))
            .collect();
        writeln!(
            out,
            "   {:<14} {}",
            format!("{}:", stage.label),
            names.join("; ")
        )?;
    }

    // 5. Tasks: one for the admin, one handed to the sales user; complete one.
    writeln!(out, "5. Tasks")?;
    let today = crm.now();
    let call = crm
        .tasks()
        .create(
            &actor,
            TaskInput {
                text: "Call Grace about the proposal".into(),
                task_type: Some("Call".into()),
                due_date: Some(today.plus(DAY).date()),
                priority: Some(Priority::High),
                contact_id: Some(grace.id),
                deal_id: Some(website.id),
                ..Default::default()
            },
        )
        .await?;
    let _ship = crm
        .tasks()
        .create(
            &actor,
            TaskInput {
                owner_id: Some(sales.id),
                text: "Send the TPS contract to Peter".into(),
                task_type: Some("Email".into()),
                due_date: Some(today.plus(3 * DAY).date()),
                contact_id: Some(peter.id),
                ..Default::default()
            },
        )
        .await?;
    crm.tasks()
        .complete(&actor, call.id, call.version, true)
        .await?;
    let all_tasks = crm.tasks().list(&actor, &ListParams::new()).await?;
    for t in &all_tasks.data {
        let due = t
            .due_date
            .map_or_else(|| "-".to_string(), |d| d.to_string());
        let done = if t.completed { "x" } else { " " };
        writeln!(out, "   [{done}] {} (due {due})", t.text)?;
    }
    // Sales users see only their own tasks: the list is scoped, not filtered afterwards.
    let sam = crm.actor(workspace.id, sales.id).await?;
    let own = crm.tasks().list(&sam, &ListParams::new()).await?;
    writeln!(
        out,
        "   {} sees {} of {} tasks (sales users see only their own)",
        sales.first_name,
        own.data.len(),
        all_tasks.data.len()
    )?;

    // 6. A note on a contact moves its last_seen forward and sets its status.
    crm.notes()
        .create(
            &actor,
            NoteInput {
                contact_id: Some(grace.id),
                text: "Loved the mock-ups; wants a quote by Friday.".into(),
                status: Some("hot".into()),
                ..Default::default()
            },
        )
        .await?;
    let grace = crm.contacts().get(&actor, grace.id).await?;
    writeln!(
        out,
        "6. Note added on {} {}: status now {}, version {}",
        grace.first_name,
        grace.last_name,
        grace.status.as_deref().unwrap_or("-"),
        grace.version
    )?;

    // 7. Search: word prefixes (and email/phone substrings) across companies, contacts, deals.
    let found = crm.search(&actor, "glob", 10).await?;
    writeln!(out, "7. Search \"glob\"")?;
    let labels = |names: Vec<String>| {
        if names.is_empty() {
            "-".to_string()
        } else {
            names.join(", ")
        }
    };
    writeln!(
        out,
        "   companies: {}",
        labels(found.companies.iter().map(|c| c.name.clone()).collect())
    )?;
    writeln!(
        out,
        "   contacts:  {}",
        labels(
            found
                .contacts
                .iter()
                .map(|c| format!("{} {}", c.first_name, c.last_name))
                .collect()
        )
    )?;
    writeln!(
        out,
        "   deals:     {}",
        labels(found.deals.iter().map(|d| d.name.clone()).collect())
    )?;

    // 8. A filtered, sorted, paged list.
    let params = ListParams::new()
        .filter("status", "cold")
        .sort("last_name")
        .limit(1);
    let first = crm.contacts().list(&actor, &params).await?;
    let second = crm
        .contacts()
        .list(&actor, &params.clone().cursor(first.next_cursor.clone()))
        .await?;
    writeln!(
        out,
        "8. Cold contacts by last name, one per page (cursor paging)"
    )?;
    for (n, page) in [&first, &second].into_iter().enumerate() {
        for c in &page.data {
            writeln!(out, "   page {}: {}", n + 1, describe_contact(c))?;
        }
    }

    // 9. Errors carry a code and a user-facing message.
    writeln!(out, "9. Errors")?;
    let invalid = crm
        .contacts()
        .create(
            &actor,
            ContactInput {
                first_name: "  ".into(),
                emails: vec![EmailEntry {
                    email: "not-an-email".into(),
                    kind: EmailKind::Work,
                }],
                ..Default::default()
            },
        )
        .await
        .expect_err("an invalid contact is refused");
    writeln!(out, "   invalid contact: {invalid}")?;
    for field in invalid.fields() {
        writeln!(
            out,
            "     - {}: {} ({})",
            field.field, field.message, field.code
        )?;
    }
    let rita = crm.actor(workspace.id, reader.id).await?;
    let refused = crm
        .companies()
        .create(&rita, company("Umbrella", "Health Care", "Raccoon City"))
        .await
        .expect_err("read-only users cannot create");
    assert_eq!(refused.kind(), ErrorKind::Forbidden);
    writeln!(out, "   read-only user creating a company: {refused}")?;
    let stale = crm
        .contacts()
        .update(&actor, alan.id, alan.version + 7, Default::default())
        .await
        .expect_err("a stale version is a conflict");
    writeln!(out, "   update from a stale version: {stale}")?;

    // 10. Everything above is in the audit trail, newest first.
    let audit = crm
        .audit()
        .list(
            &actor,
            &AuditQuery {
                limit: Some(5),
                ..Default::default()
            },
        )
        .await?;
    writeln!(out, "10. Audit trail (latest 5)")?;
    for entry in &audit {
        let what = format!(
            "{:?} {} \"{}\"",
            entry.action,
            entry.entity.noun(),
            entry.label
        );
        if entry.action == AuditAction::Create {
            writeln!(out, "   - {what}")?;
        } else {
            let fields: Vec<&str> = entry.changes.iter().map(|c| c.field.as_str()).collect();
            writeln!(out, "   - {what}: {}", fields.join(", "))?;
        }
    }

    writeln!(out, "Done.")?;
    Ok(())
}

/// A team member: email, name and role (`None`: the engine picks it, e.g. admin for the
/// workspace's first user).
fn user(email: &str, first_name: &str, last_name: &str, role: Option<Role>) -> UserInput {
    UserInput {
        email: email.into(),
        first_name: first_name.into(),
        last_name: last_name.into(),
        role,
        ..Default::default()
    }
}

/// Input for a company.
fn company(name: &str, sector: &str, city: &str) -> CompanyInput {
    CompanyInput {
        name: name.into(),
        sector: Some(sector.into()),
        city: Some(city.into()),
        ..Default::default()
    }
}

/// Input for a contact working at `employer`.
fn contact(
    first: &str,
    last: &str,
    title: &str,
    employer: &Company,
    email: &str,
    status: &str,
) -> ContactInput {
    ContactInput {
        first_name: first.into(),
        last_name: last.into(),
        title: Some(title.into()),
        company_id: Some(employer.id),
        emails: vec![EmailEntry {
            email: email.into(),
            kind: EmailKind::Work,
        }],
        phones: vec![PhoneEntry {
            number: "+1 555 0100".into(),
            kind: PhoneKind::Work,
        }],
        status: Some(status.into()),
        ..Default::default()
    }
}

/// Input for a deal with `company`, involving `person`; `amount` in cents.
fn deal(name: &str, company: &Company, person: &Contact, amount: i64) -> DealInput {
    DealInput {
        name: name.into(),
        company_id: Some(company.id),
        contact_ids: vec![person.id],
        category: Some("Website design".into()),
        amount,
        ..Default::default()
    }
}

/// `Grace Hopper, CTO at Globex Corporation <grace@globex.test> [warm]`.
fn describe_contact(c: &Contact) -> String {
    let mut s = format!("{} {}", c.first_name, c.last_name);
    if let Some(title) = &c.title {
        s.push_str(&format!(", {title}"));
    }
    if let Some(company) = &c.company_name {
        s.push_str(&format!(" at {company}"));
    }
    if let Some(email) = c.emails.first() {
        s.push_str(&format!(" <{}>", email.email));
    }
    if let Some(status) = &c.status {
        s.push_str(&format!(" [{status}]"));
    }
    s
}

/// `Globex website (12000.00 USD)`.
fn describe_deal(d: &Deal, currency: &str) -> String {
    format!(
        "{} ({}.{:02} {currency})",
        d.name,
        d.amount / 100,
        d.amount % 100
    )
}
