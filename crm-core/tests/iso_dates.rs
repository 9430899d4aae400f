//! Date-only fields (`Task::due_date`, `Deal::expected_closing_date`, their inputs and patches,
//! date values in list cursors) are ISO 8601 calendar dates on the wire, and records stored
//! with the legacy `[year, ordinal]` tuple still load.

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use crm_core::clock::Date;
use crm_core::id::{DealId, Id, TaskId, UserId, WorkspaceId};
use crm_core::model::{Deal, DealInput, DealPatch, EntityKind, Record, Task, TaskInput, TaskPatch};
use crm_core::query::{Cursor, Direction, Sort, Value};
use crm_core::service::{Managed, Records};
use crm_core::testkit::MemoryStore;
use crm_core::testkit::setup::{bootstrap, email};
use crm_core::{Actor, Crm, CrmConfig, ListParams, ManualClock, Timestamp};
use serde_json::{Value as Json, json};
use time::macros::date;

const DUE: Date = date!(2030 - 01 - 15);

/// `record` updated through `records` as `actor` with the patch `patch` reads as.
async fn patched<E: Managed>(records: Records<'_, E>, actor: &Actor, record: &E, patch: Json) -> E
where
    E::Patch: serde::de::DeserializeOwned,
{
    let patch = serde_json::from_value(patch).unwrap();
    let meta = record.meta();
    records
        .update(actor, Id::from_uuid(meta.id), meta.version, patch)
        .await
        .unwrap()
}

fn task(due: Option<Date>) -> Task {
    Task {
        id: TaskId::generate(),
        workspace_id: WorkspaceId::generate(),
        owner_id: UserId::generate(),
        text: "Call back".into(),
        task_type: None,
        due_date: due,
        priority: None,
        completed: false,
        done_date: None,
        contact_id: None,
        deal_id: None,
        company_id: None,
        created_at: Timestamp::from_micros(1_763_895_000_000_000),
        updated_at: Timestamp::from_micros(1_763_895_000_000_000),
        version: 1,
        deleted_at: None,
    }
}

fn deal(closing: Option<Date>) -> Deal {
    Deal {
        id: DealId::generate(),
        workspace_id: WorkspaceId::generate(),
        name: "Big one".into(),
        company_id: None,
        contact_ids: Vec::new(),
        category: None,
        stage: "opportunity".into(),
        description: None,
        amount: 1000,
        expected_closing_date: closing,
        index: 0,
        archived_at: None,
        sales_id: None,
        created_at: Timestamp::from_micros(1_763_895_000_000_000),
        updated_at: Timestamp::from_micros(1_763_895_000_000_000),
        version: 1,
        deleted_at: None,
    }
}

fn round_trip(record: Record, field: &str) {
    let kind = record.kind();
    let bytes = record.to_json_bytes().unwrap();
    let stored: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(stored[field], json!("2030-01-15"), "stored form of {field}");
    assert_eq!(
        record.to_json()[field],
        json!("2030-01-15"),
        "API form of {field}"
    );
    assert_eq!(Record::from_json_bytes(kind, &bytes).unwrap(), record);

    // A record stored before dates were ISO strings still loads, to the same date.
    let mut legacy = stored.clone();
    legacy[field] = json!([2030, 15]);
    let legacy = serde_json::to_vec(&legacy).unwrap();
    assert_eq!(Record::from_json_bytes(kind, &legacy).unwrap(), record);

    // A stored record with an invalid date is an error, not a silent `None`.
    let mut bad = stored;
    bad[field] = json!("2030-02-30");
    assert!(Record::from_json_bytes(kind, &serde_json::to_vec(&bad).unwrap()).is_err());
}

#[test]
fn task_and_deal_round_trip_with_iso_dates() {
    round_trip(Record::Task(task(Some(DUE))), "due_date");
    round_trip(Record::Deal(deal(Some(DUE))), "expected_closing_date");

    // No date: `null`, both ways.
    let t = Record::Task(task(None));
    assert_eq!(t.to_json()["due_date"], serde_json::Value::Null);
    let bytes = t.to_json_bytes().unwrap();
    assert_eq!(
        Record::from_json_bytes(EntityKind::Task, &bytes).unwrap(),
        t
    );
}

#[test]
fn inputs_accept_iso_dates_and_reject_invalid_ones() {
    let t: TaskInput =
        serde_json::from_value(json!({"text": "x", "due_date": "2030-01-15"})).unwrap();
    assert_eq!(t.due_date, Some(DUE));
    let d: DealInput =
        serde_json::from_value(json!({"name": "x", "expected_closing_date": "2030-01-15"}))
            .unwrap();
    assert_eq!(d.expected_closing_date, Some(DUE));
    let t: TaskInput = serde_json::from_value(json!({"text": "x"})).unwrap();
    assert_eq!(t.due_date, None);
    let t: TaskInput = serde_json::from_value(json!({"text": "x", "due_date": null})).unwrap();
    assert_eq!(t.due_date, None);
    assert_eq!(
        serde_json::to_value(TaskInput {
            due_date: Some(DUE),
            ..Default::default()
        })
        .unwrap()["due_date"],
        json!("2030-01-15")
    );

    for bad in [
        "2030-02-30",
        "tomorrow",
        "2030-1-5",
        "2030-01-15T10:00:00Z",
        "",
    ] {
        assert!(
            serde_json::from_value::<TaskInput>(json!({"text": "x", "due_date": bad})).is_err(),
            "TaskInput accepted {bad:?}"
        );
        assert!(
            serde_json::from_value::<DealInput>(json!({"name": "x", "expected_closing_date": bad}))
                .is_err(),
            "DealInput accepted {bad:?}"
        );
        assert!(
            serde_json::from_value::<TaskPatch>(json!({"due_date": bad})).is_err(),
            "TaskPatch accepted {bad:?}"
        );
        assert!(
            serde_json::from_value::<DealPatch>(json!({"expected_closing_date": bad})).is_err(),
            "DealPatch accepted {bad:?}"
        );
    }
    // The message says what was expected.
    let err = serde_json::from_slice::<TaskInput>(br#"{"text":"x","due_date":"tomorrow"}"#)
        .unwrap_err()
        .to_string();
    assert!(err.contains("YYYY-MM-DD"), "{err}");
}

#[test]
fn patches_distinguish_absent_null_and_date() {
    let p: TaskPatch = serde_json::from_value(json!({})).unwrap();
    assert_eq!(p.due_date, None, "absent: keep");
    let p: TaskPatch = serde_json::from_value(json!({"due_date": null})).unwrap();
    assert_eq!(p.due_date, Some(None), "null: clear");
    let p: TaskPatch = serde_json::from_value(json!({"due_date": "2030-01-15"})).unwrap();
    assert_eq!(p.due_date, Some(Some(DUE)));

    let p: DealPatch = serde_json::from_value(json!({"name": "y"})).unwrap();
    assert_eq!(p.expected_closing_date, None, "absent: keep");
    let p: DealPatch = serde_json::from_value(json!({"expected_closing_date": null})).unwrap();
    assert_eq!(p.expected_closing_date, Some(None), "null: clear");
    let p: DealPatch =
        serde_json::from_value(json!({"expected_closing_date": "2030-01-15"})).unwrap();
    assert_eq!(p.expected_closing_date, Some(Some(DUE)));
    assert_eq!(
        serde_json::to_value(&p).unwrap()["expected_closing_date"],
        json!("2030-01-15")
    );
}

#[tokio::test]
async fn through_the_facade_null_clears_and_absent_keeps() {
    let clock = ManualClock::new(Timestamp::parse_rfc3339("2026-03-01T10:00:00Z").unwrap());
    let crm = Crm::with_clock(
        Arc::new(MemoryStore::new()),
        CrmConfig::default(),
        Arc::new(clock),
    );
    let (_, actor) = bootstrap(&crm, "Dates", email("a@dates.test")).await;

    let input: TaskInput =
        serde_json::from_value(json!({"text": "Call back", "due_date": "2030-01-15"})).unwrap();
    let t = crm.tasks().create(&actor, input).await.unwrap();
    assert_eq!(t.due_date, Some(DUE));
    assert_eq!(
        serde_json::to_value(&t).unwrap()["due_date"],
        json!("2030-01-15")
    );

    let keep = json!({"text": "Call back soon"});
    let t = patched(crm.tasks(), &actor, &t, keep).await;
    assert_eq!(t.due_date, Some(DUE), "an absent field leaves the date");

    let move_it = json!({"due_date": "2031-02-03"});
    let t = patched(crm.tasks(), &actor, &t, move_it).await;
    assert_eq!(t.due_date, Some(date!(2031 - 02 - 03)));

    let clear = json!({"due_date": null});
    let t = patched(crm.tasks(), &actor, &t, clear).await;
    assert_eq!(t.due_date, None, "null clears the date");

    let input: DealInput =
        serde_json::from_value(json!({"name": "Big one", "expected_closing_date": "2030-01-15"}))
            .unwrap();
    let d = crm.deals().create(&actor, input).await.unwrap();
    assert_eq!(d.expected_closing_date, Some(DUE));
    let clear = json!({"expected_closing_date": null});
    let d = patched(crm.deals(), &actor, &d, clear).await;
    assert_eq!(d.expected_closing_date, None);
}

#[tokio::test]
async fn date_cursors_are_iso_and_legacy_cursors_still_decode() {
    let sort = Sort::asc("due_date");
    let id = uuid::Uuid::now_v7();
    let cursor = Cursor {
        field: "due_date".into(),
        direction: Direction::Asc,
        value: Value::Date(DUE),
        id,
    };
    let encoded = cursor.encode();
    let raw: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(&encoded).unwrap()).unwrap();
    assert_eq!(raw["value"], json!({"t": "Date", "v": "2030-01-15"}));
    assert_eq!(Cursor::decode(&encoded, &sort).unwrap(), cursor);

    let legacy = json!({
        "field": "due_date",
        "direction": "asc",
        "value": {"t": "Date", "v": [2030, 15]},
        "id": id,
    });
    let legacy = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&legacy).unwrap());
    assert_eq!(Cursor::decode(&legacy, &sort).unwrap(), cursor);

    let bad = json!({
        "field": "due_date",
        "direction": "asc",
        "value": {"t": "Date", "v": "2030-02-30"},
        "id": id,
    });
    let bad = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&bad).unwrap());
    assert!(Cursor::decode(&bad, &sort).is_err());

    // And a real walk over tasks sorted by due date pages through every one.
    let crm = Crm::new(Arc::new(MemoryStore::new()), CrmConfig::default());
    let (_, actor) = bootstrap(&crm, "Walk", email("a@walk.test")).await;
    for day in 1..=5u8 {
        crm.tasks()
            .create(
                &actor,
                TaskInput {
                    text: format!("t{day}"),
                    due_date: Some(
                        Date::from_calendar_date(2030, time::Month::March, day).unwrap(),
                    ),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
    }
    let mut seen = Vec::new();
    let mut params = ListParams::new().sort("due_date").limit(2);
    loop {
        let page = crm.tasks().list(&actor, &params).await.unwrap();
        seen.extend(page.data.iter().map(|t| t.due_date.unwrap().day()));
        match page.next_cursor {
            Some(c) => {
                let raw: serde_json::Value =
                    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(&c).unwrap()).unwrap();
                assert!(raw["value"]["v"].is_string(), "{raw}");
                params = params.cursor(Some(c));
            }
            None => break,
        }
    }
    assert_eq!(seen, vec![1, 2, 3, 4, 5]);
}
