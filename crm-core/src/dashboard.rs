//! The dashboard (Atomic CRM's): deals per pipeline stage, the caller's open tasks, the
//! latest activity, the hot contacts and record counts — exact, and fast at any size.
//!
//! # What a store maintains
//!
//! Counting a million contacts on every dashboard view is not an option, so every backend
//! keeps **tallies** — `(count, amount)` per [`TallyKey`] — up to date *in the same atomic
//! commit* as the records they count. What a record adds to them is [`contributions`] (the
//! single definition of every figure); a write from `old` to `new` applies
//! `contributions(new) - contributions(old)` ([`TallyDeltas`]). Because the delta is taken
//! against the stored state the write replaces, inside the commit, a tally equals a recount
//! of the committed records at every moment, whatever commits concurrently: there is no
//! "eventually". The conformance suite checks exactly that, after a concurrent workload,
//! against [`crate::storage::recount`].
//!
//! | key | counts | amount |
//! |---|---|---|
//! | [`TallyKey::Live`] `(kind)` | live (not soft-deleted) records of a [`FEED_KINDS`] kind | – |
//! | [`TallyKey::LiveOwned`] `(owner, kind)` | the same, per owner (`sales_id`; tasks: `owner_id`) | – |
//! | [`TallyKey::Stage`] `(stage)` | live deals in the stage, archived ones left out | sum of `amount` |
//! | [`TallyKey::OpenTasks`] `(owner, due date)` | live, not completed tasks of the owner due that day (or undated) | – |
//!
//! Besides the tallies a dashboard needs three short ordered lists, which stores serve from
//! indexes (ordered key/value stores keep the [`entries`] and [`activity_entry`] keys, whose
//! byte order is the list order; PostgreSQL has partial indexes):
//!
//! * the owner's next open tasks: by due date, undated last, then id;
//! * the hot contacts (status [`HOT_STATUS`], Atomic's "hot"): last seen most recently
//!   first, then id descending;
//! * the latest activity ([`is_activity`]: companies, contacts, deals and notes created):
//!   newest first.
//!
//! A store answers [`Storage::dashboard`](crate::Storage::dashboard) with the tally rows
//! under [`tally_prefixes`] and the three lists, all read in **one snapshot**; the engine
//! turns them into figures ([`crate::Crm::dashboard`]), applying the caller's permissions.
//!
//! # Who sees what
//!
//! * Deals per stage, hot contacts and activity are workspace-wide: every role reads every
//!   deal, contact, company and note. (A role whose read scope of a kind were not the whole
//!   workspace would see no stage figures, no hot contacts and no activity of that kind.)
//! * Open tasks are always the caller's own (owner = caller), whatever the role: it is
//!   *their* agenda.
//! * Record counts are what the caller may read: the workspace's live records of each kind,
//!   except where the caller's read scope is "own only" (tasks, for sales and read-only
//!   users): then the live records the caller owns.
//!
//! Task windows are computed from the caller's `today` (a date, by default the engine
//! clock's UTC date): *overdue* is due before today, *today* due today, *this week* due
//! after today up to the end of the week (Saturday: weeks start on Sunday, as in Atomic
//! CRM's task list), *open* every open task including undated ones.

use std::collections::BTreeMap;

use uuid::Uuid;

use crate::audit::{AuditAction, AuditEntry};
use crate::clock::Date;
use crate::feed::FEED_KINDS;
use crate::id::UserId;
use crate::kv::encode_value;
use crate::model::{EntityKind, Record};
use crate::query::Value;

/// How many of the caller's next open tasks a dashboard shows.
pub const NEXT_TASKS: usize = 10;
/// How many activity entries a dashboard shows.
pub const LATEST_ACTIVITY: usize = 10;
/// How many hot contacts a dashboard shows.
pub const HOT_CONTACTS: usize = 10;
/// The contact status that makes a contact "hot" (compared case-insensitively, as filters
/// compare text).
pub const HOT_STATUS: &str = "hot";
/// The kinds whose creations are activity (the same as `GET /activity` lists).
pub const ACTIVITY_KINDS: [EntityKind; 4] = [
    EntityKind::Company,
    EntityKind::Contact,
    EntityKind::Deal,
    EntityKind::Note,
];

/// A maintained figure: how many records, and the sum of their amounts (deals; zero
/// elsewhere). Amounts are summed in 128 bits: 200,000 deals of the largest allowed amount
/// do not fit in 64.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Tally {
    /// Records counted.
    pub count: i64,
    /// Sum of their amounts (minor units).
    pub amount: i128,
}

impl Tally {
    /// One record with `amount`.
    pub const fn one(amount: i128) -> Tally {
        Tally { count: 1, amount }
    }

    /// Adds `other` (saturating: a tally never wraps around).
    pub fn add(&mut self, other: Tally) {
        self.count = self.count.saturating_add(other.count);
        self.amount = self.amount.saturating_add(other.amount);
    }

    /// Whether it changes nothing.
    pub fn is_zero(&self) -> bool {
        self.count == 0 && self.amount == 0
    }

    /// The 24-byte stored form: count (i64) then amount (i128), big-endian.
    pub fn to_bytes(self) -> [u8; 24] {
        let mut b = [0u8; 24];
        b[..8].copy_from_slice(&self.count.to_be_bytes());
        b[8..].copy_from_slice(&self.amount.to_be_bytes());
        b
    }

    /// Parses [`Tally::to_bytes`]; `None` for another length.
    pub fn from_bytes(b: &[u8]) -> Option<Tally> {
        if b.len() != 24 {
            return None;
        }
        Some(Tally {
            count: i64::from_be_bytes(b[..8].try_into().ok()?),
            amount: i128::from_be_bytes(b[8..].try_into().ok()?),
        })
    }
}

/// What a tally counts; see the [module docs](self) for the table.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum TallyKey {
    /// Live records of a kind.
    Live(EntityKind),
    /// Live records of a kind owned by a user.
    LiveOwned(UserId, EntityKind),
    /// Live, not archived deals in a stage (count and sum of amounts).
    Stage(String),
    /// Live, open tasks of a user due on a date (`None`: undated).
    OpenTasks(UserId, Option<Date>),
}

const KEY_LIVE: u8 = b'L';
const KEY_OWNED: u8 = b'W';
const KEY_STAGE: u8 = b'S';
const KEY_OPEN: u8 = b'T';

/// The encoding of a due date inside keys: [`encode_value`]'s, so that byte order is date
/// order with undated last.
fn date_bytes(due: Option<Date>, out: &mut Vec<u8>) {
    encode_value(&due.map_or(Value::Null, Value::Date), out);
}

impl TallyKey {
    /// The key's bytes. Byte order groups keys by variant (and owner), and orders a user's
    /// [`TallyKey::OpenTasks`] by due date, undated last, so a window of days is a range.
    pub fn encode(&self) -> Vec<u8> {
        let mut k = Vec::with_capacity(24);
        match self {
            TallyKey::Live(kind) => k.extend([KEY_LIVE, kind.tag()]),
            TallyKey::LiveOwned(owner, kind) => {
                k.push(KEY_OWNED);
                k.extend_from_slice(owner.uuid().as_bytes());
                k.push(kind.tag());
            }
            TallyKey::Stage(stage) => {
                k.push(KEY_STAGE);
                k.extend_from_slice(stage.as_bytes());
            }
            TallyKey::OpenTasks(owner, due) => {
                k.push(KEY_OPEN);
                k.extend_from_slice(owner.uuid().as_bytes());
                date_bytes(*due, &mut k);
            }
        }
        k
    }

    /// Parses [`TallyKey::encode`]; `None` for bytes no key encodes to.
    pub fn decode(b: &[u8]) -> Option<TallyKey> {
        let kind_of = |tag: u8| EntityKind::ALL.into_iter().find(|k| k.tag() == tag);
        let user_of = |b: &[u8]| Uuid::from_slice(b).ok().map(UserId::from_uuid);
        let (&first, rest) = b.split_first()?;
        match first {
            KEY_LIVE if rest.len() == 1 => kind_of(rest[0]).map(TallyKey::Live),
            KEY_OWNED if rest.len() == 17 => Some(TallyKey::LiveOwned(
                user_of(&rest[..16])?,
                kind_of(rest[16])?,
            )),
            KEY_STAGE => String::from_utf8(rest.to_vec()).ok().map(TallyKey::Stage),
            KEY_OPEN if rest.len() == 17 && rest[16] == 0xFF => {
                Some(TallyKey::OpenTasks(user_of(&rest[..16])?, None))
            }
            KEY_OPEN if rest.len() == 21 && rest[16] == 0x40 => {
                let raw = u32::from_be_bytes(rest[17..21].try_into().ok()?) ^ (1 << 31);
                let day = Date::from_julian_day(raw as i32).ok()?;
                Some(TallyKey::OpenTasks(user_of(&rest[..16])?, Some(day)))
            }
            _ => None,
        }
    }

    /// Whether a store may spread this tally over several rows that are summed when read
    /// (PostgreSQL does, so that concurrent commits do not queue on one hot row). The
    /// per-day task tallies are not spread: there can be many of them, they are read as a
    /// range, and concurrent writes of one user's tasks due the same day are rare.
    pub fn spreads(&self) -> bool {
        !matches!(self, TallyKey::OpenTasks(..))
    }

    /// Whether the encoded key `b` may be spread (see [`TallyKey::spreads`]).
    pub fn spreads_encoded(b: &[u8]) -> bool {
        b.first() != Some(&KEY_OPEN)
    }
}

/// Whether a contact status makes the contact hot.
pub fn is_hot_status(status: Option<&str>) -> bool {
    status.is_some_and(|s| s.to_lowercase() == HOT_STATUS)
}

/// What a record adds to the tallies (nothing when soft deleted or of a kind outside the
/// feed). The one definition of every dashboard figure.
pub fn contributions(record: &Record) -> Vec<(TallyKey, Tally)> {
    let kind = record.kind();
    if !FEED_KINDS.contains(&kind) || record.is_deleted() {
        return Vec::new();
    }
    let mut out = vec![(TallyKey::Live(kind), Tally::one(0))];
    if let Some(owner) = record.owner() {
        out.push((TallyKey::LiveOwned(owner, kind), Tally::one(0)));
    }
    match record {
        Record::Deal(d) if d.archived_at.is_none() => {
            out.push((
                TallyKey::Stage(d.stage.clone()),
                Tally::one(i128::from(d.amount)),
            ));
        }
        Record::Task(t) if !t.completed => {
            out.push((TallyKey::OpenTasks(t.owner_id, t.due_date), Tally::one(0)));
        }
        _ => {}
    }
    out
}

/// The tally changes of a sequence of writes, by encoded key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TallyDeltas {
    by_key: BTreeMap<Vec<u8>, Tally>,
}

impl TallyDeltas {
    /// No changes.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the change of one record from `old` to `new` (`None`: absent before / after).
    pub fn add(&mut self, old: Option<&Record>, new: Option<&Record>) {
        for (key, t) in old.map(contributions).unwrap_or_default() {
            self.by_key.entry(key.encode()).or_default().add(Tally {
                count: -t.count,
                amount: -t.amount,
            });
        }
        for (key, t) in new.map(contributions).unwrap_or_default() {
            self.by_key.entry(key.encode()).or_default().add(t);
        }
    }

    /// Whether nothing changes.
    pub fn is_empty(&self) -> bool {
        self.by_key.values().all(Tally::is_zero)
    }

    /// The non-zero changes in key order (a store applying them in this order takes its
    /// row locks in one order, so two commits never deadlock on tallies).
    pub fn into_rows(self) -> Vec<(Vec<u8>, Tally)> {
        self.by_key
            .into_iter()
            .filter(|(_, t)| !t.is_zero())
            .collect()
    }
}

/// The ordered index entries of a record for [ordered key/value stores](crate::storage::kv)
/// (byte order is list order; a store prepends its workspace prefix):
///
/// * a live open task: `T owner due-date id` (due date as [`encode_value`]: undated last);
/// * a live hot contact: `H last-seen id` (read backwards: most recent first).
pub fn entries(record: &Record) -> Vec<Vec<u8>> {
    if record.is_deleted() {
        return Vec::new();
    }
    match record {
        Record::Task(t) if !t.completed => {
            let mut k = next_tasks_prefix(t.owner_id);
            date_bytes(t.due_date, &mut k);
            k.extend_from_slice(t.id.uuid().as_bytes());
            vec![k]
        }
        Record::Contact(c) if is_hot_status(c.status.as_deref()) => {
            let mut k = HOT_PREFIX.to_vec();
            encode_value(&Value::Time(c.last_seen), &mut k);
            k.extend_from_slice(c.id.uuid().as_bytes());
            vec![k]
        }
        _ => Vec::new(),
    }
}

/// Prefix of the [`entries`] of one user's open tasks.
pub fn next_tasks_prefix(owner: UserId) -> Vec<u8> {
    let mut k = Vec::with_capacity(38);
    k.push(KEY_OPEN);
    k.extend_from_slice(owner.uuid().as_bytes());
    k
}

/// Prefix of the [`entries`] of the hot contacts.
pub const HOT_PREFIX: [u8; 1] = [b'H'];
/// Prefix of the [`activity_entry`] keys.
pub const ACTIVITY_PREFIX: [u8; 1] = [b'A'];

/// Whether an audit entry is activity: the creation of a company, contact, deal or note.
pub fn is_activity(entry: &AuditEntry) -> bool {
    entry.action == AuditAction::Create && ACTIVITY_KINDS.contains(&entry.entity)
}

/// The ordered index key of an activity entry (`A audit-id`: audit ids are time-ordered, so
/// newest first is a backward scan), or `None` for other entries.
pub fn activity_entry(entry: &AuditEntry) -> Option<Vec<u8>> {
    is_activity(entry).then(|| {
        let mut k = ACTIVITY_PREFIX.to_vec();
        k.extend_from_slice(entry.id.uuid().as_bytes());
        k
    })
}

/// What the engine asks a store for one dashboard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DashboardQuery {
    /// The caller: whose open tasks and owned counts.
    pub owner: UserId,
    /// How many next open tasks.
    pub next_tasks: usize,
    /// How many hot contacts.
    pub hot_contacts: usize,
    /// How many activity entries.
    pub activity: usize,
}

impl DashboardQuery {
    /// The dashboard of `owner` with the standard list lengths.
    pub fn of(owner: UserId) -> Self {
        DashboardQuery {
            owner,
            next_tasks: NEXT_TASKS,
            hot_contacts: HOT_CONTACTS,
            activity: LATEST_ACTIVITY,
        }
    }
}

/// The key ranges, as prefixes, whose tally rows a store returns for `query`: every
/// [`TallyKey::Live`] and [`TallyKey::Stage`], and the owner's [`TallyKey::LiveOwned`] and
/// [`TallyKey::OpenTasks`].
pub fn tally_prefixes(query: &DashboardQuery) -> [Vec<u8>; 4] {
    let mut owned = vec![KEY_OWNED];
    owned.extend_from_slice(query.owner.uuid().as_bytes());
    [
        vec![KEY_LIVE],
        vec![KEY_STAGE],
        owned,
        next_tasks_prefix(query.owner),
    ]
}

/// A store's answer to a [`DashboardQuery`], read in one snapshot.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DashboardData {
    /// Every tally under [`tally_prefixes`] with a row, as `(encoded key, sum)`, in key
    /// order (one row per key).
    pub tallies: Vec<(Vec<u8>, Tally)>,
    /// The owner's next open tasks, in [`entries`] order.
    pub next_tasks: Vec<Record>,
    /// The hot live contacts, last seen most recently first (ties: id descending).
    pub hot_contacts: Vec<Record>,
    /// The newest activity entries ([`is_activity`]), newest first.
    pub activity: Vec<AuditEntry>,
}

impl DashboardData {
    /// The tally of `key` (zero when it has no row).
    pub fn tally(&self, key: &TallyKey) -> Tally {
        let k = key.encode();
        self.tallies
            .binary_search_by(|(row, _)| row.as_slice().cmp(&k))
            .map_or_else(|_| Tally::default(), |i| self.tallies[i].1)
    }
}

/// Sums of the [`TallyKey::OpenTasks`] of one user in a [`DashboardData`]: overdue (before
/// `today`), due `today`, due this week (after today, up to `week_end`) and all open.
pub fn task_windows(data: &DashboardData, owner: UserId, today: Date, week_end: Date) -> [u64; 4] {
    let mut out = [0i64; 4];
    for (k, t) in &data.tallies {
        let Some(TallyKey::OpenTasks(o, due)) = TallyKey::decode(k) else {
            continue;
        };
        if o != owner {
            continue;
        }
        out[3] += t.count;
        match due {
            Some(d) if d < today => out[0] += t.count,
            Some(d) if d == today => out[1] += t.count,
            Some(d) if d <= week_end => out[2] += t.count,
            _ => {}
        }
    }
    out.map(|n| u64::try_from(n).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_and_order_days() {
        let u = UserId::generate();
        let d = |j| Date::from_julian_day(j).unwrap();
        let keys = [
            TallyKey::Live(EntityKind::Contact),
            TallyKey::LiveOwned(u, EntityKind::Task),
            TallyKey::Stage("proposal-sent".into()),
            TallyKey::OpenTasks(u, None),
            TallyKey::OpenTasks(u, Some(d(2_461_000))),
        ];
        for k in &keys {
            assert_eq!(TallyKey::decode(&k.encode()).as_ref(), Some(k));
        }
        let early = TallyKey::OpenTasks(u, Some(d(2_461_000))).encode();
        let late = TallyKey::OpenTasks(u, Some(d(2_461_001))).encode();
        let undated = TallyKey::OpenTasks(u, None).encode();
        assert!(early < late && late < undated);
        assert!(undated.starts_with(&next_tasks_prefix(u)));
        assert!(TallyKey::decode(b"").is_none());
        assert!(TallyKey::decode(b"Lxx").is_none());
        assert!(!TallyKey::spreads_encoded(&early));
        assert!(TallyKey::spreads_encoded(&keys[0].encode()));
    }

    #[test]
    fn tallies_round_trip() {
        let t = Tally {
            count: -3,
            amount: i128::from(i64::MAX) * 7,
        };
        assert_eq!(Tally::from_bytes(&t.to_bytes()), Some(t));
        assert_eq!(Tally::from_bytes(&[0; 3]), None);
    }

    #[test]
    fn hot_is_case_insensitive() {
        assert!(is_hot_status(Some("Hot")));
        assert!(!is_hot_status(Some("warm")));
        assert!(!is_hot_status(None));
    }
}
