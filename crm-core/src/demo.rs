//! Realistic demo data, fast: records written straight through [`Storage::commit`] in large
//! commits — for the standalone server's `seed` command, the index-coverage tests and the
//! million-row benchmarks, where creating records one by one through the services would
//! take most of the run. Works on every store.
//!
//! Records are built as the core would build them (valid, with denormalized company names,
//! owners, tags) and inserted with a `create` audit entry each, so every table — audit log
//! included — has realistic contents. Generation is deterministic for a given seed.

use crate::audit::{AuditAction, AuditEntry};
use crate::clock::{Date, Timestamp};
use crate::error::Result;
use crate::id::{Id, UserId, WorkspaceId};
use crate::model::{
    Company, Contact, Deal, EmailEntry, EmailKind, Note, PhoneEntry, PhoneKind, Record, Tag, Task,
};
use crate::model::{Role, UserInput};
use crate::storage::{Commit, Storage, Write};
use crate::{Actor, Crm};

const FIRST: &[&str] = &[
    "James",
    "Mary",
    "John",
    "Patricia",
    "Robert",
    "Jennifer",
    "Michael",
    "Linda",
    "William",
    "Elizabeth",
    "David",
    "Barbara",
    "Richard",
    "Susan",
    "Joseph",
    "Jessica",
    "Thomas",
    "Sarah",
    "Charles",
    "Karen",
    "Christopher",
    "Nancy",
    "Daniel",
    "Lisa",
    "Matthew",
    "Betty",
    "Anthony",
    "Margaret",
    "Mark",
    "Sandra",
    "Donald",
    "Ashley",
    "Steven",
    "Kimberly",
    "Paul",
    "Emily",
    "Andrew",
    "Donna",
    "Joshua",
    "Michelle",
    "Kenneth",
    "Dorothy",
    "Kevin",
    "Carol",
    "Brian",
    "Amanda",
    "George",
    "Melissa",
    "Edward",
    "Deborah",
    "Zoe",
    "Quentin",
    "Yara",
    "Xavier",
];
const LAST: &[&str] = &[
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Garcia",
    "Miller",
    "Davis",
    "Rodriguez",
    "Martinez",
    "Hernandez",
    "Lopez",
    "Gonzalez",
    "Wilson",
    "Anderson",
    "Thomas",
    "Taylor",
    "Moore",
    "Jackson",
    "Martin",
    "Lee",
    "Perez",
    "Thompson",
    "White",
    "Harris",
    "Sanchez",
    "Clark",
    "Ramirez",
    "Lewis",
    "Robinson",
    "Walker",
    "Young",
    "Allen",
    "King",
    "Wright",
    "Scott",
    "Torres",
    "Nguyen",
    "Hill",
    "Flores",
    "Green",
    "Adams",
    "Nelson",
    "Baker",
    "Hall",
    "Rivera",
    "Campbell",
    "Mitchell",
    "Carter",
    "Roberts",
    "Okafor",
    "Kowalski",
    "Yamamoto",
];
const WORDS: &[&str] = &[
    "Acme",
    "Globex",
    "Initech",
    "Umbrella",
    "Stark",
    "Wayne",
    "Wonka",
    "Tyrell",
    "Cyberdyne",
    "Soylent",
    "Hooli",
    "Vandelay",
    "Massive",
    "Dynamic",
    "Aperture",
    "Oscorp",
    "Gringotts",
    "Nakatomi",
    "Monarch",
    "Pied",
    "Piper",
    "Blue",
    "Sun",
    "Oak",
    "River",
    "Summit",
    "Pioneer",
    "Quantum",
    "Vertex",
    "Harbor",
    "Atlas",
    "Beacon",
    "Cobalt",
    "Delta",
    "Echo",
    "Falcon",
];
const SUFFIX: &[&str] = &[
    "Inc", "LLC", "Labs", "Group", "Partners", "Systems", "Works",
];
const CITIES: &[&str] = &[
    "Tucson", "Boston", "Denver", "Austin", "Portland", "Chicago", "Seattle", "Atlanta", "Miami",
];
const TITLES: &[&str] = &[
    "CEO",
    "CTO",
    "Head of Sales",
    "Engineer",
    "Designer",
    "Buyer",
    "Account Manager",
];
const STATUSES: &[&str] = &["cold", "warm", "hot", "in-contract"];
const STAGES: &[&str] = &[
    "opportunity",
    "proposal-sent",
    "in-negociation",
    "won",
    "lost",
];
const CATEGORIES: &[&str] = &["Other", "Copywriting", "Print project", "UI Design"];
const TASK_TYPES: &[&str] = &["Email", "Demo", "Lunch", "Meeting", "Follow-up", "Call"];

/// How many records of each kind [`seed`] writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Volume {
    /// Companies.
    pub companies: usize,
    /// Contacts (each at a company, most with an email and a phone).
    pub contacts: usize,
    /// Deals (at companies, with one to three contacts).
    pub deals: usize,
    /// Tasks (on contacts, owned by the given users).
    pub tasks: usize,
    /// Notes (on contacts).
    pub notes: usize,
}

/// What [`seed`] wrote: the ids, for picking query values.
#[derive(Debug, Clone, Default)]
pub struct Seeded {
    /// Tag ids (ten tags).
    pub tags: Vec<uuid::Uuid>,
    /// Company ids.
    pub companies: Vec<uuid::Uuid>,
    /// Contact ids.
    pub contacts: Vec<uuid::Uuid>,
    /// Deal ids.
    pub deals: Vec<uuid::Uuid>,
    /// Task ids.
    pub tasks: Vec<uuid::Uuid>,
}

/// A small deterministic generator (xorshift64*).
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let x = self.0.wrapping_mul(0x2545_F491_4F6C_DD1D);
        (x % n.max(1) as u64) as usize
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

/// Adds `count` sales users (`sales0@<domain>`, ...) to the admin's workspace, to own demo
/// records; their ids, in order.
///
/// # Errors
/// As [`crate::service::Users::create`] (e.g. `Duplicate` if they exist already).
pub async fn add_sales_users(
    crm: &Crm,
    admin: &Actor,
    domain: &str,
    count: usize,
) -> Result<Vec<UserId>> {
    let mut ids = Vec::with_capacity(count);
    for n in 0..count {
        let user = crm
            .users()
            .create(
                admin,
                UserInput {
                    email: format!("sales{n}@{domain}"),
                    first_name: "Sam".into(),
                    last_name: format!("Seller {n}"),
                    role: Some(Role::Sales),
                    avatar: None,
                },
            )
            .await?;
        ids.push(user.id);
    }
    Ok(ids)
}

/// A new workspace named `name` whose admin is `admin@<domain>`, with `sales` sales users
/// (see [`add_sales_users`]): the admin as an actor, and every user's id (the admin
/// first) — the owners to give [`seed`].
///
/// # Errors
/// As [`Crm::bootstrap`] and [`add_sales_users`].
pub async fn workspace(
    crm: &Crm,
    name: &str,
    domain: &str,
    sales: usize,
) -> Result<(Actor, Vec<UserId>)> {
    let (ws, admin) = crm
        .bootstrap(
            name,
            UserInput {
                email: format!("admin@{domain}"),
                first_name: "Ada".into(),
                last_name: "Admin".into(),
                ..Default::default()
            },
        )
        .await?;
    let actor = crm.actor(ws.id, admin.id).await?;
    let mut owners = vec![admin.id];
    owners.extend(add_sales_users(crm, &actor, domain, sales).await?);
    Ok((actor, owners))
}

/// Writes `volume` records into `workspace` (which must exist, with `owners` among its
/// users), in commits of `batch` records, and returns their ids.
///
/// # Errors
/// The first storage error.
pub async fn seed(
    storage: &dyn Storage,
    workspace: WorkspaceId,
    owners: &[UserId],
    volume: Volume,
    seed: u64,
) -> Result<Seeded> {
    let mut rng = Rng(seed | 1);
    let now = Timestamp::now_utc().as_micros();
    // Instants spread over the past year, to the second.
    let when =
        |rng: &mut Rng| Timestamp::from_micros(now - rng.below(365 * 24 * 3600) as i64 * 1_000_000);
    let mut out = Seeded::default();
    let mut writer = Writer::new(storage, workspace);
    let owner = |rng: &mut Rng| owners[rng.below(owners.len())];

    for (n, name) in [
        "vip",
        "lead",
        "partner",
        "churn-risk",
        "newsletter",
        "event",
        "referral",
        "enterprise",
        "smb",
        "press",
    ]
    .iter()
    .enumerate()
    {
        let t = when(&mut rng);
        let tag = Tag {
            id: Id::generate(),
            workspace_id: workspace,
            name: (*name).into(),
            color: format!("#{:06x}", n * 0x151515),
            created_at: t,
            updated_at: t,
            version: 1,
            deleted_at: None,
        };
        out.tags.push(tag.id.uuid());
        writer.push(Record::Tag(tag), None).await?;
    }

    let mut company_names = Vec::with_capacity(volume.companies);
    for n in 0..volume.companies {
        let t = when(&mut rng);
        let name = format!(
            "{} {} {} {n}",
            rng.pick(WORDS),
            rng.pick(WORDS),
            rng.pick(SUFFIX)
        );
        let c = Company {
            id: Id::generate(),
            workspace_id: workspace,
            name: name.clone(),
            sector: None,
            size: Some([1, 10, 50, 250, 500][rng.below(5)]),
            website: Some(format!(
                "https://{}.example",
                name.to_lowercase().replace(' ', "-")
            )),
            phone_number: Some(format!("+1 (520) 555-{:04}", rng.below(10_000))),
            address: None,
            zipcode: Some(format!("{:05}", rng.below(100_000))),
            city: Some(rng.pick(CITIES).into()),
            state_abbr: Some("AZ".into()),
            country: Some("US".into()),
            linkedin_url: None,
            description: None,
            revenue: None,
            tax_identifier: None,
            context_links: Vec::new(),
            sales_id: Some(owner(&mut rng)),
            created_at: t,
            updated_at: t,
            version: 1,
            deleted_at: None,
        };
        out.companies.push(c.id.uuid());
        company_names.push(name);
        writer.push(Record::Company(c), Some(owners[0])).await?;
    }

    for n in 0..volume.contacts {
        let t = when(&mut rng);
        let (first, last) = (rng.pick(FIRST), rng.pick(LAST));
        let company = (!out.companies.is_empty()).then(|| rng.below(out.companies.len()));
        let mut tags = Vec::new();
        if rng.below(4) == 0 {
            tags.push(Id::from_uuid(out.tags[rng.below(out.tags.len())]));
        }
        let c = Contact {
            id: Id::generate(),
            workspace_id: workspace,
            first_name: first.into(),
            last_name: last.into(),
            title: Some(rng.pick(TITLES).into()),
            gender: None,
            background: (rng.below(3) == 0)
                .then(|| format!("Met at the {} fair", rng.pick(CITIES))),
            emails: vec![EmailEntry {
                email: format!(
                    "{}.{}{n}@{}.example",
                    first.to_lowercase(),
                    last.to_lowercase(),
                    rng.pick(WORDS).to_lowercase()
                ),
                kind: EmailKind::Work,
            }],
            phones: (rng.below(2) == 0)
                .then(|| PhoneEntry {
                    number: format!("+1 (415) {:03}-{:04}", rng.below(1000), rng.below(10_000)),
                    kind: PhoneKind::Work,
                })
                .into_iter()
                .collect(),
            company_id: company.map(|i| Id::from_uuid(out.companies[i])),
            company_name: company.map(|i| company_names[i].clone()),
            status: Some(rng.pick(STATUSES).into()),
            tags,
            has_newsletter: rng.below(2) == 0,
            consents: Vec::new(),
            linkedin_url: None,
            avatar: None,
            first_seen: t,
            last_seen: when(&mut rng).max(t),
            sales_id: Some(owner(&mut rng)),
            created_at: t,
            updated_at: t,
            version: 1,
            deleted_at: None,
        };
        out.contacts.push(c.id.uuid());
        writer.push(Record::Contact(c), Some(owners[0])).await?;
    }

    for n in 0..volume.deals {
        let t = when(&mut rng);
        let contacts = (0..1 + rng.below(3))
            .filter(|_| !out.contacts.is_empty())
            .map(|_| Id::from_uuid(out.contacts[rng.below(out.contacts.len())]))
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        let d = Deal {
            id: Id::generate(),
            workspace_id: workspace,
            name: format!("{} {} deal {n}", rng.pick(WORDS), rng.pick(CATEGORIES)),
            company_id: (!out.companies.is_empty())
                .then(|| Id::from_uuid(out.companies[rng.below(out.companies.len())])),
            contact_ids: contacts,
            category: Some(rng.pick(CATEGORIES).into()),
            stage: rng.pick(STAGES).into(),
            description: None,
            amount: rng.below(1_000_000) as i64 * 100,
            expected_closing_date: Date::from_julian_day(2_461_000 + rng.below(700) as i32).ok(),
            index: n as i64 * 1024,
            archived_at: None,
            sales_id: Some(owner(&mut rng)),
            created_at: t,
            updated_at: t,
            version: 1,
            deleted_at: None,
        };
        out.deals.push(d.id.uuid());
        writer.push(Record::Deal(d), Some(owners[0])).await?;
    }

    for _ in 0..volume.tasks {
        let t = when(&mut rng);
        let completed = rng.below(3) == 0;
        let task = Task {
            id: Id::generate(),
            workspace_id: workspace,
            owner_id: owner(&mut rng),
            text: format!("{} {}", rng.pick(TASK_TYPES), rng.pick(FIRST)),
            task_type: Some(rng.pick(TASK_TYPES).into()),
            due_date: Date::from_julian_day(2_461_000 + rng.below(700) as i32).ok(),
            priority: None,
            completed,
            done_date: completed.then_some(t),
            contact_id: (!out.contacts.is_empty())
                .then(|| Id::from_uuid(out.contacts[rng.below(out.contacts.len())])),
            deal_id: None,
            company_id: None,
            created_at: t,
            updated_at: t,
            version: 1,
            deleted_at: None,
        };
        out.tasks.push(task.id.uuid());
        writer.push(Record::Task(task), Some(owners[0])).await?;
    }

    for _ in 0..volume.notes {
        let t = when(&mut rng);
        let note = Note {
            id: Id::generate(),
            workspace_id: workspace,
            contact_id: (!out.contacts.is_empty())
                .then(|| Id::from_uuid(out.contacts[rng.below(out.contacts.len())])),
            deal_id: None,
            text: format!(
                "Called {} about the {} offer",
                rng.pick(FIRST),
                rng.pick(WORDS)
            ),
            status: Some(rng.pick(STATUSES).into()),
            note_type: None,
            date: t,
            sales_id: Some(owner(&mut rng)),
            attachments: Vec::new(),
            created_at: t,
            updated_at: t,
            version: 1,
            deleted_at: None,
        };
        writer.push(Record::Note(note), Some(owners[0])).await?;
    }
    writer.flush().await?;
    Ok(out)
}

/// Collects inserts and their audit entries into commits of [`Writer::BATCH`] records.
struct Writer<'a> {
    storage: &'a dyn Storage,
    commit: Commit,
}

impl<'a> Writer<'a> {
    const BATCH: usize = 2_000;

    fn new(storage: &'a dyn Storage, workspace: WorkspaceId) -> Self {
        Writer {
            storage,
            commit: Commit::new(workspace),
        }
    }

    async fn push(&mut self, record: Record, actor: Option<UserId>) -> Result<()> {
        let meta = record.meta();
        self.commit.audit.push(AuditEntry {
            id: Id::generate(),
            workspace_id: meta.workspace_id,
            at: meta.created_at,
            actor_id: actor,
            entity: record.kind(),
            record_id: meta.id,
            label: record.label(),
            action: AuditAction::Create,
            changes: Vec::new(),
        });
        self.commit.writes.push(Write::Insert(record));
        if self.commit.writes.len() >= Self::BATCH {
            self.flush().await?;
        }
        Ok(())
    }

    async fn flush(&mut self) -> Result<()> {
        if self.commit.writes.is_empty() {
            return Ok(());
        }
        let next = Commit::new(self.commit.workspace_id);
        self.storage
            .commit(std::mem::replace(&mut self.commit, next))
            .await
    }
}
