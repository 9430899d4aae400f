//! # crm-store-redb
//!
//! Embedded, single-file storage for [`crm_core`] on [redb](https://docs.rs/redb): the
//! zero-setup default backend. [`RedbStore`] implements [`crm_core::Storage`].
//!
//! ```no_run
//! # async fn demo() -> crm_core::Result<()> {
//! use std::sync::Arc;
//! use crm_core::{Crm, CrmConfig, Storage};
//! use crm_store_redb::RedbStore;
//!
//! let storage: Arc<dyn Storage> = Arc::new(RedbStore::open("crm.redb")?);
//! let crm = Crm::new(storage, CrmConfig::default());
//! # let _ = crm;
//! # Ok(()) }
//! ```
//!
//! redb is synchronous. No redb call ever runs on an async executor thread: reads run on
//! Tokio's blocking pool, writes on the store's own writer thread.
//!
//! ## File layout
//!
//! One redb file, format version [`FORMAT_VERSION`] (kept in the `crm_meta` table; a file of
//! another version is refused with `StorageCorrupted` rather than misread). Every key is a byte
//! string; `kind` is [`EntityKind::tag`](crm_core::model::EntityKind::tag) (one byte), `ws` the
//! workspace id and `id` a record id (16 bytes each):
//!
//! | table | key | value |
//! |---|---|---|
//! | `crm_meta` | `"format_version"`, `"batch_seq"`, `"feed_tx"` | `u64` |
//! | `crm_records` | `kind ws id` | the record's JSON ([`Record::to_json_bytes`](crm_core::model::Record::to_json_bytes)) |
//! | `crm_indexes` | `kind ws index-no suffix` | `()` |
//! | `crm_search` | `kind ws word 0x00 id`, `kind ws 0x01 suffix 0x00 id` | `()` |
//! | `crm_unique` | `kind ws key-name 0x00 value` | id of the holder |
//! | `crm_audit` | `ws audit-id` | the audit entry's JSON |
//! | `crm_audit_by_record` | `ws record-id audit-id` | `()` |
//! | `crm_feed` | `ws tx seq` (u64, u32 big-endian) | the [change](crm_core::feed::Change)'s JSON |
//! | `crm_feed_at` | `ws kind id` | the `tx seq` of the record's feed entry |
//! | `crm_feed_horizon` | `ws` | the feed's horizon `tx seq` |
//! | `crm_recent` | `ws user kind record-id` | the latest view's time (recently viewed) |
//! | `crm_recent_by_time` | `ws user kind time record-id` | `()`: the same views in time order, at most 100 per list |
//! | `crm_tally` | `ws tally-key` | the dashboard's maintained figures: count (i64) and amount (i128), big-endian |
//! | `crm_dashboard` | `ws entry` | `()`: the dashboard's ordered lists (open tasks per owner, hot contacts, activity) |
//! | `crm_access_blocks` | `ws block-key` | a block of up to 512 access-log entries in id order (the `access` module, `src/access.rs`, describes blocks) |
//! | `crm_access_blocks_by_record`, `crm_access_blocks_by_user` | `ws record-or-user block-key` | `()`: the blocks holding reads of a record, or by a user |
//! | `crm_security` | `ws event-id` | the security event's JSON |
//! | `crm_security_by_user` | `ws user-id event-id` | `()`: the events about or by a user |
//!
//! * Index suffixes are [`kv::index_keys`](crm_core::storage::kv::index_keys): the
//!   order-preserving encoding of the indexed values followed by the id, one entry per index
//!   of [`EntityKind::indexes`](crm_core::model::EntityKind::indexes) (one per element for
//!   multi-valued fields). Bytewise key order is therefore exactly the core's sort order
//!   (value, then id; text case-insensitive; `Null` last).
//! * Search entries are of two kinds, for the searchable kinds only: one per word of
//!   [`search::tokens_of`](crm_core::search::tokens_of), and, after the byte `0x01` (which no
//!   word starts with), one per suffix of at least
//!   [`MIN_SUBSTRING`](crm_core::search::MIN_SUBSTRING) chars of each contact point of
//!   [`search::contact_points_of`](crm_core::search::contact_points_of) (email-address words
//!   and phone digit runs). Soft-deleted records keep theirs (the trash is searchable too).
//! * Unique values are [`Record::unique_keys`](crm_core::model::Record::unique_keys); a
//!   soft-deleted record holds none.
//! * Audit ids are UUIDv7, so `ws audit-id` order is time order: newest first is a reverse
//!   scan, and `AuditQuery::before` is the scan's exclusive start.
//!
//! * The change feed ([`crm_core::feed`]) keeps one entry per record: a commit's entries take
//!   `tx` = `feed_tx` + 1 (the single writer increments it in the write transaction, so
//!   positions follow commit order and a reader, seeing whole transactions only, never finds
//!   a new entry behind one it has read) and replace the record's previous entry through
//!   `crm_feed_at`. Files written before the feed existed get the tables on open; their
//!   records enter the feed when next changed.
//!
//! * The dashboard ([`crm_core::dashboard`]): each record write applies the change of the
//!   record's [`contributions`](crm_core::dashboard::contributions) to `crm_tally` (read,
//!   add, write; a tally that falls to zero loses its row) and moves its
//!   [`entries`](crm_core::dashboard::entries) in `crm_dashboard`, like index entries; each
//!   activity audit entry adds its key there. Format 3 added both tables: a format-2 file is
//!   upgraded on open, the tables built from its records and audit log in one transaction.
//!
//! * The access log is stored in blocks, one row per batch of entries (format 4; a file of
//!   format 3 or before, which kept one row per entry, is moved into blocks on open): see
//!   the `access` module (`src/access.rs`).
//!
//! Records, their index, search and unique entries, the commit's audit and feed entries are
//! always written in one redb transaction: a record is either there with all of its entries, or not
//! there at all.
//!
//! ## Group commit
//!
//! [`Storage::commit`](crm_core::Storage::commit) sends the [`Commit`](crm_core::Commit) to
//! the writer thread over a bounded queue and waits for the answer. The writer:
//!
//! 1. takes every queued commit, up to [`RedbOptions::max_batch`], and opens **one** write
//!    transaction;
//! 2. for each commit in queue order, checks **all** of its assertions against the
//!    transaction's current state — which includes the commits of the same batch applied
//!    before it — exactly as the trait documents them: an `Insert`'s id must be free
//!    (`VersionConflict`), `Update`/`Delete`/`Check` need the expected version (`NotFound`,
//!    `VersionConflict`), `Exists` needs a live record (a `Validation` error naming the field
//!    as `UnknownReference`), unique values of inserted and updated records must not be held
//!    by another record (`Duplicate`, also when two records of the same commit claim one), and
//!    every record and audit entry must belong to the commit's workspace (`StorageFailure`);
//! 3. applies a commit's writes and audit entries only if all of its checks passed; a commit
//!    that fails a check is skipped and never touches the transaction;
//! 4. increments the batch number in `crm_meta`, commits the transaction **once** (durably:
//!    redb fsyncs before `commit` returns), and only then answers every caller: `Ok` for the
//!    applied commits, their own error for the skipped ones.
//!
//! Throughput is therefore one fsync per batch, not per commit, while each caller still gets
//! an answer only once its change is durable.
//!
//! ## What a failure leaves behind
//!
//! * **A commit fails a check**: nothing of it was written; the other commits of its batch are
//!   unaffected. Checks only read, so this includes a storage error met while checking (say,
//!   a stored record that no longer decodes: `StorageCorrupted`).
//! * **A storage error while applying** (redb fails to write into the transaction): the
//!   transaction may hold part of a commit, so it is aborted and every commit of the batch
//!   fails with that storage error (E3xxx). Nothing of the batch was written.
//! * **The transaction commit fails** (an I/O error, a failed fsync): redb applies a commit
//!   fully or not at all but, after a failed commit, cannot say which, and refuses further
//!   writes until the file is reopened. The writer reopens it at once (redb repairs the file
//!   while opening; reads fail with `StorageUnavailable` meanwhile) and reads the batch number
//!   back. If the batch turned out durable, its callers get their normal answers; otherwise
//!   every commit of the batch fails with `StorageFailure` and none of it was applied. So an
//!   `Ok` always means durable and an error always means not applied — except in one case:
//!   if the file cannot be reopened (after a few retries), the outcome is unknown; the callers
//!   get `StorageFailure`, reads and commits fail with `StorageUnavailable` until a later
//!   reopen succeeds (each read or ping nudges the writer to retry), and what the file then
//!   holds decides.
//! * **The process dies** (crash, `SIGKILL`, power loss): every acknowledged commit is in the
//!   file, with its index, search, unique and audit entries; no commit is half there. The next
//!   [`RedbStore::open`] repairs the file if needed.
//! * **Relaxed log writes.** Two kinds of write are committed without waiting for the disk
//!   (redb's `Durability::None`): access-log batches and recently-viewed batches, whose
//!   documented loss on a crash is a few seconds. Each record commit is durable and takes
//!   every relaxed commit before it to the disk; without one, the writer makes them durable
//!   within 2 s (an empty durable commit when it has nothing else to do), and a graceful
//!   close leaves none behind. So a crash loses at most the last 2 s of those logs, never a
//!   record, an audit entry or a security event (`tests/relaxed_logs.rs` kills a process
//!   after an idle spell and finds every entry). Under a read load with the access log on,
//!   this took the writer thread from 17% to 12% of the CPU (BENCHMARKS.md).
//!
//! ## Lists and search
//!
//! A list walks one index: [`kv::plan`](crm_core::storage::kv::plan) picks it (the longest
//! equality prefix, then the sort field), the scan starts strictly after the cursor in the
//! plan's direction, and each record read is kept if it passes
//! [`kv::admits`](crm_core::storage::kv::admits), until the page is full. A page costs what
//! it returns plus the rows the filters skip, never the size of the table.
//!
//! Search implements the rule of [`crm_core::search`]: a term matches a record when it is a
//! prefix of one of its words or, if it has at least
//! [`MIN_SUBSTRING`](crm_core::search::MIN_SUBSTRING) chars, a substring of one of its contact
//! points — that is, a prefix of one of the contact-point suffixes the index holds. A search
//! first reads only search-index keys: for each query term, longest first, a prefix scan of
//! the words (and, for a term of `MIN_SUBSTRING`+ chars, a second one of the contact-point
//! suffixes) collects the distinct ids of the records the term matches, giving up on the term
//! once more than [`RedbOptions::search_candidates`] turn up (a broad term narrows nothing).
//! A match matches *every* term, so it lies in the set of every narrow term: the sets are
//! intersected, and the scans stop early once few candidates remain. Then:
//!
//! * if some term was narrow, the intersection holds every possible match. Up to 256 of them
//!   are loaded, filtered with `kv::admits` (every term, every filter, soft delete) and the
//!   cursor, sorted with `kv::sort_records` and cut to the page. More than that, and the sort
//!   index is walked instead, loading only the rows whose id is in the set (a skipped row
//!   costs one key read, not a decode);
//! * if every term was broad, the sort index is walked as for a plain list, `kv::admits`
//!   checking the terms: matches are dense, so a page fills quickly.
//!
//! Nothing ever counts or ranks all matches; a search reads at most a bounded number of
//! search-index keys per term, and decodes at most 256 candidates or the rows its walk meets.
//!
//! Both paths return the same rows in the same order (sort value, then id) with the same
//! cursor semantics.
//!
//! ## Where reads run
//!
//! redb is synchronous. Lists, searches, audit reads and batches of more than
//! [`INLINE_MANY_MAX`] ids run on Tokio's blocking pool, so a long scan never holds an async
//! worker. **Point reads** — one record by id or unique key, a few by id — run on the
//! calling thread ([`RedbOptions::inline_point_reads`], on by default), because there the
//! hop costs far more than the read: a warm point read is a few B-tree pages in redb's cache
//! (about a microsecond), while handing it to the blocking pool and back costs two thread
//! wake-ups and context switches (tens of microseconds under load; it was the largest item
//! in crm-server's profile, see `BENCHMARKS.md`, "Request path at the floor").
//! `tokio::task::block_in_place` is no cheaper: it hands the worker's scheduler to another
//! thread on every call.
//!
//! A cold point read costs one `pread` per B-tree level missing from the cache — a few page
//! reads from the OS page cache, or from disk for a file larger than memory — which stalls
//! that async worker for as long. That bound is what inline reads trade for the hop: at most
//! a handful of page reads per request, never a scan. A host whose database does not fit in
//! memory on slow disks can turn them off.

mod access;
mod error;
mod logs;
mod read;
mod schema;
mod store;
mod writer;

#[cfg(test)]
mod tests;

pub use error::StoreError;
pub use schema::FORMAT_VERSION;
pub use store::{INLINE_MANY_MAX, RedbOptions, RedbStore, WriterStats};
pub use writer::BATCH_SIZE_BOUNDS;
