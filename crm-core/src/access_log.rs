//! The access log: who read which personal data, when, through which route, from where.
//!
//! Every read of records through the facade — a single record, a batch, a list or a search
//! (one entry per record returned), the change feed, an export — becomes one
//! [`AccessEntry`] per record read. Recording is off the read path: the engine queues
//! entries in memory (bounded by [`QUEUE_LIMIT`]; beyond it entries are dropped and counted,
//! never the read) and [`crate::Crm::flush_logs`] hands them to
//! [`crate::Storage::append_access_log`] in one call per batch. A host calls `flush_logs`
//! every second or so (crm-http's state does), so a crash loses at most that interval of
//! entries plus one write in flight, never a record. A store may commit these batches
//! without waiting for the disk and put them there a little later (crm-store-redb does,
//! within 2 s): its docs say by how much that widens the loss.
//!
//! Entries are kept by the store and read back newest first with an [`AccessLogQuery`];
//! [`crate::Storage::erase_access_log_for`] removes those about a record (erasure),
//! [`crate::Storage::redact_access_log_by`] drops the addresses of those a user made
//! (anonymisation), and [`crate::Storage::prune_access_log`] removes old ones in bounded
//! batches (retention).

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::clock::Timestamp;
use crate::id::{UserId, WorkspaceId};
use crate::model::EntityKind;

/// Entries waiting in memory to be written, at most (beyond, new ones are dropped).
pub const QUEUE_LIMIT: usize = 50_000;

/// Largest page of [`AccessLogQuery::limit`].
pub const MAX_LIMIT: usize = 500;

/// A UUIDv7 for a log entry made at `at`: its 48-bit timestamp is `at`'s millisecond, the
/// next 12 bits (`rand_a`) hold `at`'s microsecond within it, then a process-wide sequence
/// number and random bits. So ids sort by the engine clock's time to the microsecond, and
/// entries made at the same instant by one process sort in the order they were made:
/// "older than" is an id range, and pages are stable. The random bits come from a seed the
/// operating system gives once per process, mixed with the sequence number: one id a
/// record read costs no system call.
pub fn id_at(at: Timestamp) -> Uuid {
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let seq = n & ((1 << 30) - 1);
    let random = crate::kind::process_unique_bits(n) as u32;
    let low = (0b10u64 << 62) | (seq << 32) | u64::from(random);
    Uuid::from_u128((u128::from(prefix(at)) << 64) | u128::from(low))
}

/// The high 64 bits of [`id_at`]'s ids for `at`.
fn prefix(at: Timestamp) -> u64 {
    let micros = at.as_micros().max(0) as u64;
    let (ms, sub) = (micros / 1000, micros % 1000);
    ((ms & 0xffff_ffff_ffff) << 16) | 0x7000 | sub
}

/// The smallest id [`id_at`] gives for `at`: entries with a smaller id were made before.
pub fn id_floor(at: Timestamp) -> Uuid {
    Uuid::from_u128((u128::from(prefix(at)) << 64) | (0b10u128 << 62))
}

/// One record read by one user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessEntry {
    /// Id (UUIDv7 of `at`, see [`id_at`]); the paging cursor.
    pub id: Uuid,
    /// Workspace.
    pub workspace_id: WorkspaceId,
    /// When.
    pub at: Timestamp,
    /// Who read.
    pub user_id: UserId,
    /// What kind of record.
    pub entity: EntityKind,
    /// Which record.
    pub record_id: Uuid,
    /// How: the host's route (`GET /contacts/{id}`) or the facade operation (`contacts.get`).
    pub route: String,
    /// From which client address, when known and the workspace keeps addresses.
    pub address: Option<String>,
}

/// Filters for reading the access log, newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccessLogQuery {
    /// Only reads of this record.
    pub record_id: Option<Uuid>,
    /// Only reads by this user.
    pub user_id: Option<UserId>,
    /// Only entries at or after this instant.
    pub since: Option<Timestamp>,
    /// Only entries before this instant.
    pub until: Option<Timestamp>,
    /// Only entries older than this one (the paging cursor: the last id of a page).
    pub before: Option<Uuid>,
    /// At most this many (1..=[`MAX_LIMIT`]).
    pub limit: usize,
}

impl AccessLogQuery {
    /// Whether an entry passes the filters and the cursor (not the limit).
    pub fn admits(&self, e: &AccessEntry) -> bool {
        self.record_id.is_none_or(|r| r == e.record_id)
            && self.user_id.is_none_or(|u| u == e.user_id)
            && self.since.is_none_or(|s| e.at >= s)
            && self.until.is_none_or(|u| e.at < u)
            && self.before.is_none_or(|b| e.id < b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_follow_the_time_they_stand_for() {
        let t = Timestamp::parse_rfc3339("2026-03-01T10:00:00.123456Z").unwrap();
        let a = id_at(t);
        let b = id_at(t.plus(std::time::Duration::from_millis(1)));
        assert!(a < b);
        assert!(id_floor(t) <= a);
        assert!(id_floor(t.plus(std::time::Duration::from_micros(1))) > a);
        assert_eq!(a.get_version_num(), 7);
        assert_eq!(a.get_variant(), uuid::Variant::RFC4122);
        let same: Vec<Uuid> = (0..100).map(|_| id_at(t)).collect();
        assert!(
            same.windows(2).all(|p| p[0] < p[1]),
            "made in order, sorted in order"
        );
    }
}
