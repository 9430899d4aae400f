//! # crm-benches
//!
//! Shared fixtures of the benchmarks in `benches/benches/`: realistic generated data, a
//! seeded engine on a fresh redb file, a raw redb table to measure the floor each operation
//! rests on, and latency percentiles. See `BENCHMARKS.md` at the repository root for how to
//! run them and for the latest figures.
//!
//! Every measurement is reported beside the raw redb operation it rests on, measured in the
//! same process on the same machine, because absolute numbers drift between runs and
//! machines while the ratio says what the engine adds.
//!
//! The benchmarks that drive their own loop run on [`runtime`]; the scale benchmarks seed
//! [`scaled_volume`]; the HTTP ones build their identity layer with [`http::identity`].
//! What only the criterion benchmarks share (their settings, runtime and the raw scan
//! floor) is the module `benches/benches/common/`, included by each.

pub mod http;

use std::ops::Bound;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crm_core::id::CompanyId;
use crm_core::model::{
    CompanyInput, ContactInput, EmailEntry, EmailKind, PhoneEntry, PhoneKind, UserInput,
};
use crm_core::{Actor, Crm, CrmConfig};
use crm_store_redb::{RedbOptions, RedbStore};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use tokio::task::JoinSet;
use uuid::Uuid;

/// The runtime of the benchmarks that drive their own loop: multi-threaded, two workers
/// (the machine's two cores), every driver enabled.
///
/// # Panics
/// If the runtime cannot be built (a benchmark cannot run without it).
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// The data set of the scale benchmarks (`dashboard`, `postgres_scale`): a million contacts
/// with their companies, deals, tasks and notes, times `CRM_BENCH_SCALE` (default 1).
pub fn scaled_volume() -> crm_core::demo::Volume {
    let scale: f64 = std::env::var("CRM_BENCH_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1.0);
    let n = |x: f64| (x * scale) as usize;
    crm_core::demo::Volume {
        companies: n(100_000.0),
        contacts: n(1_000_000.0),
        deals: n(200_000.0),
        tasks: n(500_000.0),
        notes: n(100_000.0),
    }
}

/// A small deterministic PRNG (SplitMix64): same seed, same data, no extra dependency.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator starting from `seed`.
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// An independent generator seeded from this one. (Seeds that differ by a multiple of
    /// SplitMix's increment would give shifted copies of one stream — correlated data.)
    pub fn fork(&mut self) -> Rng {
        Rng::new(self.next_u64())
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// One element of a non-empty slice.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// First names (common US and European given names; `joh` prefixes a handful of them, as
/// in real address books).
#[rustfmt::skip]
pub const FIRST_NAMES: &[&str] = &[
    "James", "Mary", "John", "Patricia", "Robert", "Jennifer", "Michael", "Linda", "William",
    "Elizabeth", "David", "Barbara", "Richard", "Susan", "Joseph", "Jessica", "Thomas", "Sarah",
    "Charles", "Karen", "Christopher", "Nancy", "Daniel", "Lisa", "Matthew", "Betty", "Anthony",
    "Margaret", "Mark", "Sandra", "Donald", "Ashley", "Steven", "Kimberly", "Paul", "Emily",
    "Andrew", "Donna", "Joshua", "Michelle", "Kenneth", "Dorothy", "Kevin", "Carol", "Brian",
    "Amanda", "George", "Melissa", "Edward", "Deborah", "Ronald", "Stephanie", "Timothy",
    "Rebecca", "Jason", "Sharon", "Jeffrey", "Laura", "Ryan", "Cynthia", "Jacob", "Kathleen",
    "Gary", "Amy", "Nicholas", "Shirley", "Eric", "Angela", "Jonathan", "Helen", "Stephen",
    "Anna", "Larry", "Brenda", "Justin", "Pamela", "Scott", "Nicole", "Brandon", "Emma",
    "Benjamin", "Samantha", "Samuel", "Katherine", "Gregory", "Christine", "Frank", "Debra",
    "Alexander", "Rachel", "Raymond", "Catherine", "Patrick", "Carolyn", "Jack", "Janet",
    "Dennis", "Ruth", "Jerry", "Maria", "Tyler", "Heather", "Aaron", "Diane", "Jose",
    "Virginia", "Adam", "Julie", "Henry", "Joyce", "Nathan", "Victoria", "Douglas", "Olivia",
    "Zachary", "Kelly", "Peter", "Christina", "Kyle", "Lauren", "Walter", "Joan", "Ethan",
    "Evelyn", "Jeremy", "Judith", "Harold", "Megan", "Keith", "Cheryl", "Christian", "Andrea",
    "Roger", "Hannah", "Noah", "Martha", "Gerald", "Jacqueline", "Carl", "Frances", "Terry",
    "Gloria", "Sean", "Ann", "Austin", "Teresa", "Arthur", "Kathryn", "Lawrence", "Sara",
    "Jesse", "Janice", "Dylan", "Jean", "Bryan", "Alice", "Joe", "Madison", "Jordan", "Doris",
    "Billy", "Abigail", "Bruce", "Julia", "Albert", "Judy", "Willie", "Grace", "Gabriel",
    "Denise", "Logan", "Amber", "Alan", "Marilyn", "Juan", "Beverly", "Wayne", "Danielle",
    "Roy", "Theresa", "Ralph", "Sophia", "Randy", "Marie", "Eugene", "Diana", "Vincent",
    "Brittany", "Russell", "Natalie", "Elijah", "Isabella", "Louis", "Charlotte", "Bobby",
    "Rose", "Philip", "Alexis", "Johnny", "Kayla", "Johanna", "Lucas", "Johan", "Ingrid",
    "Pierre", "Camille", "Hans", "Greta", "Luca", "Giulia", "Mateo", "Lucia", "Lars", "Astrid",
    "Jan", "Eva",
];

/// Last names (common US and European surnames).
#[rustfmt::skip]
pub const LAST_NAMES: &[&str] = &[
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez",
    "Martinez", "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor",
    "Moore", "Jackson", "Martin", "Lee", "Perez", "Thompson", "White", "Harris", "Sanchez",
    "Clark", "Ramirez", "Lewis", "Robinson", "Walker", "Young", "Allen", "King", "Wright",
    "Scott", "Torres", "Nguyen", "Hill", "Flores", "Green", "Adams", "Nelson", "Baker", "Hall",
    "Rivera", "Campbell", "Mitchell", "Carter", "Roberts", "Gomez", "Phillips", "Evans",
    "Turner", "Diaz", "Parker", "Cruz", "Edwards", "Collins", "Reyes", "Stewart", "Morris",
    "Morales", "Murphy", "Cook", "Rogers", "Gutierrez", "Ortiz", "Morgan", "Cooper", "Peterson",
    "Bailey", "Reed", "Kelly", "Howard", "Ramos", "Kim", "Cox", "Ward", "Richardson", "Watson",
    "Brooks", "Chavez", "Wood", "James", "Bennett", "Gray", "Mendoza", "Ruiz", "Hughes",
    "Price", "Alvarez", "Castillo", "Sanders", "Patel", "Myers", "Long", "Ross", "Foster",
    "Jimenez", "Powell", "Jenkins", "Perry", "Russell", "Sullivan", "Bell", "Coleman", "Butler",
    "Henderson", "Barnes", "Gonzales", "Fisher", "Vasquez", "Simmons", "Romero", "Jordan",
    "Patterson", "Alexander", "Hamilton", "Graham", "Reynolds", "Griffin", "Wallace", "Moreno",
    "West", "Cole", "Hayes", "Bryant", "Herrera", "Gibson", "Ellis", "Tran", "Medina",
    "Aguilar", "Stevens", "Murray", "Ford", "Castro", "Marshall", "Owens", "Harrison",
    "Fernandez", "McDonald", "Woods", "Washington", "Kennedy", "Wells", "Vargas", "Henry",
    "Chen", "Freeman", "Webb", "Tucker", "Guzman", "Burns", "Crawford", "Olson", "Simpson",
    "Porter", "Hunter", "Gordon", "Mendez", "Silva", "Shaw", "Snyder", "Mason", "Dixon",
    "Munoz", "Hunt", "Hicks", "Holmes", "Palmer", "Wagner", "Black", "Robertson", "Boyd",
    "Rose", "Stone", "Salazar", "Fox", "Warren", "Mills", "Meyer", "Rice", "Schmidt", "Garza",
    "Daniels", "Ferguson", "Nichols", "Stephens", "Soto", "Weaver", "Ryan", "Gardner", "Payne",
    "Grant", "Dunn", "Johnston", "Muller", "Schneider", "Dubois", "Rossi", "Bianchi", "Larsen",
    "Hansen", "Novak", "Kowalski", "Jansen", "De Vries", "Lindqvist", "Moreau", "Fischer",
    "Weber",
];

/// Job titles.
#[rustfmt::skip]
pub const TITLES: &[&str] = &[
    "CEO", "CTO", "CFO", "COO", "VP Sales", "VP Engineering", "Head of Marketing",
    "Account Executive", "Sales Manager", "Product Manager", "Software Engineer",
    "Data Analyst", "Office Manager", "Procurement Lead", "Operations Director",
    "Customer Success Manager", "Founder", "Designer", "Consultant", "Buyer",
];

/// Words companies are named from (`{a} {b}`).
#[rustfmt::skip]
pub const COMPANY_WORDS: &[&str] = &[
    "Acme", "Globex", "Initech", "Umbrella", "Stark", "Wayne", "Wonka", "Hooli", "Vandelay",
    "Soylent", "Tyrell", "Cyberdyne", "Aperture", "Black Mesa", "Oscorp", "Gringotts",
    "Monarch", "Prestige", "Sterling", "Dunder", "Pied Piper", "Bluth", "Massive", "Nakatomi",
    "Vehement", "Zorg", "Kerbal", "Blue Sun", "Weyland", "Gekko",
];

/// Second words of company names.
#[rustfmt::skip]
pub const COMPANY_SUFFIXES: &[&str] = &[
    "Industries", "Corporation", "Labs", "Systems", "Logistics", "Foods", "Consulting",
    "Energy", "Media", "Holdings", "Partners", "Analytics", "Robotics", "Health", "Capital",
];

/// Cities.
#[rustfmt::skip]
pub const CITIES: &[&str] = &[
    "Springfield", "Austin", "Boston", "Denver", "Seattle", "Chicago", "Paris", "Berlin",
    "Madrid", "Rome", "Lisbon", "Amsterdam", "Stockholm", "Warsaw", "Toronto", "Portland",
];

/// Background sentences (the long free-text field of a contact).
pub const BACKGROUNDS: &[&str] = &[
    "Met at the spring trade fair; interested in the annual plan.",
    "Referred by a former colleague. Prefers email over calls.",
    "Long-time customer, renewing every January. Budget owner.",
    "Evaluating three vendors this quarter; decision expected soon.",
    "Asked for a demo of the reporting module and API access.",
    "Champion inside the account; introduced us to procurement.",
    "Cold lead from the newsletter; opened the last two campaigns.",
    "Former customer who moved companies; warm relationship.",
];

/// Contact statuses of the default configuration.
pub const STATUSES: &[&str] = &["cold", "warm", "hot", "in-contract"];

/// A company the generated contacts may work for.
#[derive(Debug, Clone)]
pub struct SeededCompany {
    /// Its id.
    pub id: CompanyId,
    /// Its name.
    pub name: String,
    /// Its email domain, e.g. `globex-labs.test`.
    pub domain: String,
}

/// Input of a generated company number `n`.
pub fn company_input(rng: &mut Rng, n: usize) -> CompanyInput {
    let name = format!(
        "{} {} {}",
        rng.pick(COMPANY_WORDS),
        rng.pick(COMPANY_SUFFIXES),
        n
    );
    CompanyInput {
        name,
        sector: Some("Information Technology".into()),
        city: Some((*rng.pick(CITIES)).into()),
        ..Default::default()
    }
}

/// The email domain of a company name: `Globex Labs 12` → `globex-labs-12.test`.
pub fn domain_of(name: &str) -> String {
    let slug: Vec<String> = name
        .split_whitespace()
        .map(str::to_ascii_lowercase)
        .collect();
    format!("{}.test", slug.join("-"))
}

/// Input of a generated contact, working for one of `companies` (most do) — about the size of
/// a real address-book entry (its stored JSON is 700-900 bytes).
pub fn contact_input(rng: &mut Rng, companies: &[SeededCompany]) -> ContactInput {
    let first = *rng.pick(FIRST_NAMES);
    let last = *rng.pick(LAST_NAMES);
    let company = (!companies.is_empty() && rng.below(10) < 8).then(|| rng.pick(companies));
    let domain = company.map_or("mail.test", |c| c.domain.as_str());
    let local = format!("{}.{}", first, last.replace(' ', "")).to_ascii_lowercase();
    let phone = format!(
        "+1 {:03} 555 {:04}",
        200 + rng.below(700),
        rng.below(10_000)
    );
    ContactInput {
        first_name: first.into(),
        last_name: last.into(),
        title: Some((*rng.pick(TITLES)).into()),
        background: Some((*rng.pick(BACKGROUNDS)).into()),
        emails: vec![EmailEntry {
            email: format!("{local}@{domain}"),
            kind: EmailKind::Work,
        }],
        phones: vec![PhoneEntry {
            number: phone,
            kind: PhoneKind::Work,
        }],
        company_id: company.map(|c| c.id),
        status: Some((*rng.pick(STATUSES)).into()),
        has_newsletter: rng.below(2) == 0,
        linkedin_url: Some(format!(
            "https://www.linkedin.com/in/{}",
            local.replace('.', "-")
        )),
        ..Default::default()
    }
}

/// An engine on a fresh redb file in its own temp dir, with a bootstrapped workspace and its
/// admin as the actor. The directory (and the file) go away when the fixture is dropped.
pub struct CoreFixture {
    /// The engine.
    pub crm: Crm,
    /// The store under the engine (a clone sharing the same database).
    pub store: RedbStore,
    /// The workspace admin.
    pub actor: Actor,
    /// Holds the temp dir alive; also where a raw table can go (same disk).
    pub dir: tempfile::TempDir,
}

impl std::fmt::Debug for CoreFixture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CoreFixture")
            .field("dir", &self.dir.path())
            .finish_non_exhaustive()
    }
}

impl CoreFixture {
    /// Opens a fresh store and bootstraps a workspace. Must run inside a Tokio runtime.
    ///
    /// # Panics
    /// If the temp dir, the store or the bootstrap fails (a benchmark cannot continue).
    pub async fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = RedbStore::open(dir.path().join("crm.redb")).expect("open redb store");
        let crm = Crm::new(Arc::new(store.clone()), CrmConfig::default());
        let (workspace, admin) = crm
            .bootstrap(
                "Bench Inc.",
                UserInput {
                    email: "admin@bench.test".into(),
                    first_name: "Bench".into(),
                    last_name: "Admin".into(),
                    ..Default::default()
                },
            )
            .await
            .expect("bootstrap");
        let actor = crm.actor(workspace.id, admin.id).await.expect("actor");
        CoreFixture {
            crm,
            store,
            actor,
            dir,
        }
    }

    /// Closes the store and reopens the same file with `options` (same data, same actor),
    /// e.g. to compare tuning knobs without seeding again.
    ///
    /// # Panics
    /// If closing or reopening fails.
    pub async fn reopen_with(&mut self, options: RedbOptions) {
        self.store.close().await.expect("close store");
        let store = RedbStore::open_with(self.dir.path().join("crm.redb"), options)
            .expect("reopen redb store");
        self.crm = Crm::new(Arc::new(store.clone()), CrmConfig::default());
        self.store = store;
    }

    /// A raw redb table in another file (named `file`) of the same directory, so both sit
    /// on the same disk.
    pub fn raw_table(&self, file: &str) -> RawTable {
        RawTable::create(self.dir.path().join(file))
    }
}

/// Creates `count` companies from `concurrency` tasks at once.
///
/// # Errors
/// The first engine error.
pub async fn seed_companies(
    crm: &Crm,
    actor: &Actor,
    count: usize,
    concurrency: usize,
    seed: u64,
) -> crm_core::Result<Vec<SeededCompany>> {
    let mut set: JoinSet<crm_core::Result<Vec<SeededCompany>>> = JoinSet::new();
    let mut master = Rng::new(seed);
    for t in 0..concurrency {
        let (crm, actor, rng) = (crm.clone(), actor.clone(), master.fork());
        set.spawn(async move {
            let mut rng = rng;
            let mut made = Vec::new();
            for n in (t..count).step_by(concurrency) {
                let company = crm
                    .companies()
                    .create(&actor, company_input(&mut rng, n))
                    .await?;
                made.push(SeededCompany {
                    id: company.id,
                    domain: domain_of(&company.name),
                    name: company.name,
                });
            }
            Ok(made)
        });
    }
    let mut all = Vec::with_capacity(count);
    while let Some(joined) = set.join_next().await {
        all.extend(joined.expect("seeding task panicked")?);
    }
    all.sort_by_key(|c| c.id);
    Ok(all)
}

/// Creates `count` contacts from `concurrency` tasks at once — so the store's group commit
/// batches them — and returns how long it took.
///
/// # Errors
/// The first engine error.
pub async fn seed_contacts(
    crm: &Crm,
    actor: &Actor,
    companies: &[SeededCompany],
    count: usize,
    concurrency: usize,
    seed: u64,
) -> crm_core::Result<Duration> {
    let started = Instant::now();
    let companies: Arc<[SeededCompany]> = companies.into();
    let mut set: JoinSet<crm_core::Result<()>> = JoinSet::new();
    let mut master = Rng::new(seed);
    for t in 0..concurrency {
        let (crm, actor, companies, rng) =
            (crm.clone(), actor.clone(), companies.clone(), master.fork());
        set.spawn(async move {
            let mut rng = rng;
            for _ in (t..count).step_by(concurrency) {
                crm.contacts()
                    .create(&actor, contact_input(&mut rng, &companies))
                    .await?;
            }
            Ok(())
        });
    }
    while let Some(joined) = set.join_next().await {
        joined.expect("seeding task panicked")?;
    }
    Ok(started.elapsed())
}

/// The one table of a [`RawTable`]: byte keys to byte values, as the store's tables.
const RAW: TableDefinition<&[u8], &[u8]> = TableDefinition::new("raw");

/// A bare redb table: the floor every engine operation is compared with. Writes use redb's
/// default durability (fsync on commit), as the store does. Cheap to clone.
#[derive(Clone)]
pub struct RawTable {
    db: Arc<Database>,
}

impl std::fmt::Debug for RawTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawTable").finish_non_exhaustive()
    }
}

impl RawTable {
    /// Creates the database file at `path` with an empty table.
    ///
    /// # Panics
    /// On any redb error (a benchmark cannot continue).
    pub fn create(path: impl AsRef<Path>) -> Self {
        let db = Database::create(path).expect("create raw redb");
        let txn = db.begin_write().expect("begin write");
        txn.open_table(RAW).expect("open table");
        txn.commit().expect("commit");
        RawTable { db: Arc::new(db) }
    }

    /// One write transaction inserting (or overwriting) one value, committed durably.
    ///
    /// # Panics
    /// On any redb error.
    pub fn insert(&self, key: &[u8], value: &[u8]) {
        let txn = self.db.begin_write().expect("begin write");
        {
            let mut table = txn.open_table(RAW).expect("open table");
            table.insert(key, value).expect("insert");
        }
        txn.commit().expect("commit");
    }

    /// One write transaction inserting every item, committed durably.
    ///
    /// # Panics
    /// On any redb error.
    pub fn insert_many<K, V>(&self, items: impl IntoIterator<Item = (K, V)>)
    where
        K: AsRef<[u8]>,
        V: AsRef<[u8]>,
    {
        let txn = self.db.begin_write().expect("begin write");
        {
            let mut table = txn.open_table(RAW).expect("open table");
            for (k, v) in items {
                table.insert(k.as_ref(), v.as_ref()).expect("insert");
            }
        }
        txn.commit().expect("commit");
    }

    /// One read transaction fetching one value (copied out, as a store must before it
    /// decodes).
    ///
    /// # Panics
    /// On any redb error.
    pub fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        let txn = self.db.begin_read().expect("begin read");
        let table = txn.open_table(RAW).expect("open table");
        table.get(key).expect("get").map(|v| v.value().to_vec())
    }

    /// One read transaction copying out the first `n` values at or after `start`.
    ///
    /// # Panics
    /// On any redb error.
    pub fn scan(&self, start: &[u8], n: usize) -> Vec<Vec<u8>> {
        let txn = self.db.begin_read().expect("begin read");
        let table = txn.open_table(RAW).expect("open table");
        let range = table
            .range::<&[u8]>((Bound::Included(start), Bound::Unbounded))
            .expect("range");
        range
            .take(n)
            .map(|entry| entry.expect("entry").1.value().to_vec())
            .collect()
    }
}

/// Index entries of a [`StoreShapedInsert`] (key only, as in the store).
const RAW_INDEXES: TableDefinition<&[u8], ()> = TableDefinition::new("raw_indexes");
/// Search-word entries of a [`StoreShapedInsert`].
const RAW_SEARCH: TableDefinition<&[u8], ()> = TableDefinition::new("raw_search");
/// Audit entries of a [`StoreShapedInsert`].
const RAW_AUDIT: TableDefinition<&[u8], &[u8]> = TableDefinition::new("raw_audit");
/// Audit-by-record keys of a [`StoreShapedInsert`].
const RAW_AUDIT_BY_RECORD: TableDefinition<&[u8], ()> = TableDefinition::new("raw_audit_by_record");
/// The batch counter of a [`StoreShapedInsert`].
const RAW_META: TableDefinition<&str, u64> = TableDefinition::new("raw_meta");

/// Everything `crm-store-redb` writes when it inserts one record, precomputed as raw
/// key/values: the record's JSON, one key per secondary index entry, one key per search word,
/// the audit entry's JSON, its per-record audit key and the batch counter — in as many tables.
/// [`RawTable::insert_store_shaped`] writes them in one durable transaction: the floor of a
/// create *with the same amount of data and tables*, as opposed to a single insert.
#[derive(Debug, Clone)]
pub struct StoreShapedInsert {
    record: Vec<u8>,
    /// Full keys ending with the record id (replaced per insert).
    index: Vec<Vec<u8>>,
    /// Full keys ending with the record id (replaced per insert).
    search: Vec<Vec<u8>>,
    audit: Vec<u8>,
}

impl StoreShapedInsert {
    /// The entries of `record` created by `actor`, built with the same `crm-core` functions
    /// the store uses (`kv::index_keys`, `search::tokens_of`, `audit::diff`).
    pub fn of(record: &crm_core::model::Record, actor: Option<crm_core::id::UserId>) -> Self {
        let prefix = |n: u8| {
            let mut k = vec![record.kind().tag()];
            k.extend_from_slice(record.workspace_id().as_bytes());
            k.push(n);
            k
        };
        let index = crm_core::storage::kv::index_keys(record)
            .into_iter()
            .map(|(n, suffix)| {
                let mut k = prefix(n);
                k.extend_from_slice(&suffix);
                k
            })
            .collect();
        let search = crm_core::search::tokens_of(record)
            .into_iter()
            .map(|word| {
                let mut k = prefix(0);
                k.extend_from_slice(word.as_bytes());
                k.push(0);
                k.extend_from_slice(record.id().as_bytes());
                k
            })
            .collect();
        let entry = crm_core::audit::AuditEntry {
            id: crm_core::id::AuditId::generate(),
            workspace_id: record.workspace_id(),
            at: crm_core::Timestamp::now_utc(),
            actor_id: actor,
            entity: record.kind(),
            record_id: record.id(),
            label: record.label(),
            action: crm_core::audit::AuditAction::Create,
            changes: crm_core::audit::diff(None, Some(record)),
        };
        StoreShapedInsert {
            record: record.to_json_bytes().expect("record JSON"),
            index,
            search,
            audit: serde_json::to_vec(&entry).unwrap_or_default(),
        }
    }

    /// Number of key/values one insert writes.
    pub fn entries(&self) -> usize {
        // record + index keys + search keys + audit + audit-by-record + batch counter
        1 + self.index.len() + self.search.len() + 3
    }
}

/// `key` with its last 16 bytes replaced by `id`.
fn with_id(key: &[u8], id: Uuid) -> Vec<u8> {
    let mut k = key[..key.len().saturating_sub(16)].to_vec();
    k.extend_from_slice(id.as_bytes());
    k
}

impl RawTable {
    /// One durable write transaction writing every entry of `w` for a record with id `id`
    /// (and a fresh audit id) into six tables, as the store does for one create.
    ///
    /// # Panics
    /// On any redb error.
    pub fn insert_store_shaped(&self, w: &StoreShapedInsert, id: Uuid) {
        let audit_id = Uuid::now_v7();
        let txn = self.db.begin_write().expect("begin write");
        {
            let mut records = txn.open_table(RAW).expect("open table");
            records
                .insert(raw_key(id).as_slice(), w.record.as_slice())
                .expect("insert");
            let mut indexes = txn.open_table(RAW_INDEXES).expect("open table");
            for k in &w.index {
                indexes
                    .insert(with_id(k, id).as_slice(), ())
                    .expect("insert");
            }
            let mut search = txn.open_table(RAW_SEARCH).expect("open table");
            for k in &w.search {
                search
                    .insert(with_id(k, id).as_slice(), ())
                    .expect("insert");
            }
            let mut audit = txn.open_table(RAW_AUDIT).expect("open table");
            audit
                .insert(raw_key(audit_id).as_slice(), w.audit.as_slice())
                .expect("insert");
            let mut by_record = txn.open_table(RAW_AUDIT_BY_RECORD).expect("open table");
            let mut k = raw_key(id);
            k.extend_from_slice(audit_id.as_bytes());
            by_record.insert(k.as_slice(), ()).expect("insert");
            let mut meta = txn.open_table(RAW_META).expect("open table");
            let seq = meta.get("batch_seq").expect("get").map_or(0, |v| v.value());
            meta.insert("batch_seq", seq + 1).expect("insert");
        }
        txn.commit().expect("commit");
    }
}

/// A raw key shaped like the store's record keys: a kind byte, a 16-byte workspace id and a
/// 16-byte record id.
pub fn raw_key(id: Uuid) -> Vec<u8> {
    let mut key = Vec::with_capacity(33);
    key.push(b'r');
    key.extend_from_slice(&[0u8; 16]);
    key.extend_from_slice(id.as_bytes());
    key
}

/// Latency percentiles of individually timed iterations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Percentiles {
    /// Number of samples.
    pub count: usize,
    /// Median.
    pub p50: Duration,
    /// 95th percentile.
    pub p95: Duration,
    /// 99th percentile.
    pub p99: Duration,
    /// Slowest sample.
    pub max: Duration,
}

impl Percentiles {
    /// Nearest-rank percentiles of `samples` (sorted in place); `None` if there are none.
    pub fn of(samples: &mut [Duration]) -> Option<Self> {
        if samples.is_empty() {
            return None;
        }
        samples.sort_unstable();
        let rank = |p: usize| {
            // Nearest rank: the smallest sample with at least p% of samples at or below it.
            let r = (p * samples.len()).div_ceil(100);
            samples[r.clamp(1, samples.len()) - 1]
        };
        Some(Percentiles {
            count: samples.len(),
            p50: rank(50),
            p95: rank(95),
            p99: rank(99),
            max: samples[samples.len() - 1],
        })
    }
}

/// A duration for tables: milliseconds with three decimals from 1 ms up (`1.234 ms`),
/// microseconds with one decimal below (`12.3 µs`).
pub fn ms(d: Duration) -> String {
    if d >= Duration::from_millis(1) {
        format!("{:.3} ms", d.as_secs_f64() * 1e3)
    } else {
        format!("{:.1} µs", d.as_secs_f64() * 1e6)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_nearest_rank() {
        let mut v: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        let p = Percentiles::of(&mut v).unwrap();
        assert_eq!(p.p50, Duration::from_millis(50));
        assert_eq!(p.p95, Duration::from_millis(95));
        assert_eq!(p.p99, Duration::from_millis(99));
        assert_eq!(p.max, Duration::from_millis(100));
        assert!(Percentiles::of(&mut []).is_none());
    }

    #[test]
    fn rng_is_deterministic_and_names_are_varied() {
        let (mut a, mut b) = (Rng::new(7), Rng::new(7));
        assert_eq!(a.next_u64(), b.next_u64());
        assert!(FIRST_NAMES.len() >= 200 && LAST_NAMES.len() >= 200);
        assert_eq!(domain_of("Globex Labs 12"), "globex-labs-12.test");
    }
}
