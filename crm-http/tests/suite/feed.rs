//! `/changes` (the change feed, long polling) and batch reads (`?ids=`).

use serde_json::{Value, json};

use super::*;

/// Walks `/changes` from `since` until an item about `last` shows up (PostgreSQL may show a
/// fresh commit a moment later: `wait` covers that), returning every item and the cursor.
async fn walk_until(
    s: &Session,
    since: Option<String>,
    limit: usize,
    last: &str,
) -> (Vec<Value>, String) {
    let mut items: Vec<Value> = Vec::new();
    let mut since = since;
    for _ in 0..200 {
        let mut path = format!("/changes?limit={limit}&wait=2");
        if let Some(c) = &since {
            path.push_str(&format!("&since={c}"));
        }
        let r = s.get(&path).send().await;
        assert_eq!(r.status, 200, "{}", r.text);
        let next = r.body["next_cursor"]
            .as_str()
            .expect("next_cursor always present");
        let data = r.body["data"].as_array().expect("data").clone();
        assert!(data.len() <= limit);
        let done = data.iter().any(|i| i["id"] == last);
        items.extend(data);
        since = Some(next.to_owned());
        if done {
            return (items, next.to_owned());
        }
    }
    panic!("{last} never showed in /changes");
}

pub async fn changes_walk_pages_carry_records_and_long_poll(store: StoreFactory) {
    let (server, admin) = Server::admin(store).await;
    let ids = admin.numbered_contacts(5, "C", "Feed").await;
    let (items, end) = walk_until(&admin, None, 2, &ids[4]).await;
    for cid in &ids {
        let item = items
            .iter()
            .find(|i| i["id"] == cid.as_str())
            .expect("every contact once");
        assert_eq!(items.iter().filter(|i| i["id"] == cid.as_str()).count(), 1);
        assert_eq!(item["entity"], "contact");
        assert_eq!(item["op"], "upsert");
        let got = admin.get(&format!("/contacts/{cid}")).send().await;
        assert_eq!(item["record"], got.body, "the record as GET returns it");
        assert!(item["cursor"].is_string());
    }
    // From the end: nothing, and the same cursor back.
    let r = admin.get(&format!("/changes?since={end}")).send().await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["data"], json!([]));
    assert_eq!(r.body["next_cursor"], end.as_str());

    // A long poll from the end answers with the change made while it waits.
    let poll = {
        let admin = admin.clone();
        let end = end.clone();
        tokio::spawn(async move {
            admin
                .get(&format!("/changes?since={end}&wait=20&entities=contact"))
                .send()
                .await
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let r = admin.delete(&format!("/contacts/{}", ids[0])).send().await;
    assert_eq!(r.status, 204, "{}", r.text);
    let r = poll.await.unwrap();
    assert_eq!(r.status, 200, "{}", r.text);
    let data = r.body["data"].as_array().unwrap();
    assert_eq!(data.len(), 1, "{}", r.text);
    assert_eq!(data[0]["id"], ids[0].as_str());
    assert_eq!(data[0]["op"], "delete");
    assert_eq!(data[0]["record"], Value::Null);

    // Kinds filter.
    let deal = admin.create("/deals", json!({ "name": "Feed deal" })).await;
    let (items, _) = walk_until(&admin, None, 1000, &id(&deal)).await;
    assert!(items.iter().any(|i| i["entity"] == "deal"));
    let r = admin.get("/changes?entities=deal&limit=1000").send().await;
    assert!(
        r.body["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["entity"] == "deal")
    );

    // A cursor the feed no longer covers: 410, resync.
    let ws = crm_core::id::WorkspaceId::from_uuid(admin.workspace_id.parse().unwrap());
    let later = server
        .state
        .crm()
        .now()
        .plus(std::time::Duration::from_secs(60));
    assert!(server.storage.prune_changes(ws, later).await.unwrap() >= 1);
    let r = admin
        .get(&format!("/changes?since={end}"))
        .refused(410, "E2005")
        .await;
    assert_eq!(r.fields(), ["since"]);
    assert_eq!(admin.get("/changes").send().await.status, 200);
}

pub async fn changes_hide_what_the_caller_may_not_read(store: StoreFactory) {
    let (server, admin) = Server::admin(store).await;
    let ann = admin.add_user(&server, "ann@acme.test", "sales").await;
    let bob = admin.add_user(&server, "bob@acme.test", "sales").await;
    let secret = bob.create("/tasks", json!({ "text": "bob's" })).await;
    let own = ann.create("/tasks", json!({ "text": "ann's" })).await;
    let (items, _) = walk_until(&ann, None, 100, &id(&own)).await;
    assert!(!items.iter().any(|i| i["id"] == id(&secret).as_str()));
    let (items, _) = walk_until(&admin, None, 100, &id(&own)).await;
    assert!(items.iter().any(|i| i["id"] == id(&secret).as_str()));
    // Batch reads leave it out too.
    let r = ann
        .get(&format!("/tasks?ids={},{}", id(&secret), id(&own)))
        .send()
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let data = r.body["data"].as_array().unwrap();
    assert_eq!(data.len(), 1);
    assert_eq!(data[0]["id"], id(&own).as_str());
}

pub async fn changes_and_batch_reads_refuse_bad_parameters(store: StoreFactory) {
    let (_server, admin) = Server::admin(store).await;
    let other_ws = crm_core::feed::ChangeCursor {
        workspace_id: crm_core::id::WorkspaceId::generate(),
        position: crm_core::feed::Position { tx: 1, seq: 0 },
    }
    .encode();
    for (query, code, field) in [
        ("limit=0", "E2003", "limit"),
        ("limit=1001", "E2003", "limit"),
        ("limit=ten", "E2003", "limit"),
        ("wait=31", "E2003", "wait"),
        ("wait=-1", "E2003", "wait"),
        ("entities=user", "E2003", "entities"),
        ("entities=contact,bogus", "E2003", "entities"),
        ("entities=", "E2003", "entities"),
        ("since=", "E2002", "since"),
        ("since=not-a-cursor", "E2002", "since"),
        (&format!("since={other_ws}"), "E2002", "since"),
        ("colour=red", "E2003", "colour"),
    ] {
        let r = admin.get(&format!("/changes?{query}")).send().await;
        r.assert_error(400, code);
        assert_eq!(r.fields(), [field], "{query}");
    }

    let mut made = Vec::new();
    for i in 0..3 {
        made.push(id(&admin
            .create(
                "/contacts",
                json!({ "first_name": format!("B{i}"), "last_name": "Batch" }),
            )
            .await));
    }
    let missing = uuid::Uuid::now_v7();
    let r = admin
        .get(&format!("/contacts?ids={},{missing},{}", made[2], made[0]))
        .send()
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        super::data_field(&r.body, "id"),
        [made[2].as_str(), made[0].as_str()],
        "asked order, missing left out"
    );
    let many: Vec<String> = (0..101).map(|_| uuid::Uuid::now_v7().to_string()).collect();
    admin
        .assert_bad_queries(
            "/contacts?",
            &[
                (format!("ids={}", many.join(",")), "ids"),
                ("ids=nope".to_owned(), "ids"),
                (format!("ids={}&limit=5", made[0]), "limit"),
            ],
        )
        .await;
    let r = admin
        .get(&format!("/contacts?ids={}", many[..100].join(",")))
        .send()
        .await;
    assert_eq!(r.status, 200, "100 ids are fine");
}

pub async fn recently_viewed_is_recorded_off_the_read_path_and_shared(store: StoreFactory) {
    let (server, admin) = Server::admin(store).await;
    let ids = admin.numbered_contacts(3, "R", "Recent").await;
    for i in [0, 1, 2, 0] {
        let r = admin.get(&format!("/contacts/{}", ids[i])).send().await;
        assert_eq!(r.status, 200);
        // Distinct view times.
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    // Views are written in the background within about a second; a second instance on the
    // same store answers the same.
    let second = Server::on(server.storage.clone(), Box::new(()), Options::default()).await;
    let again = Session {
        client: {
            let mut c = admin.client.clone();
            c.base = second.base.clone();
            c
        },
        ..admin.clone()
    };
    let want = [ids[0].as_str(), ids[2].as_str(), ids[1].as_str()];
    let mut got = Vec::new();
    for _ in 0..300 {
        let r = again.get("/me/recent?entity=contact").send().await;
        assert_eq!(r.status, 200, "{}", r.text);
        got = super::data_field(&r.body, "id");
        if got.len() == 3 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(got, want, "newest first, each once");
    let r = admin.get("/me/recent?entity=deal").send().await;
    assert_eq!(r.body["data"], json!([]));
    admin
        .assert_bad_queries(
            "/me/recent",
            &[
                ("", "entity"),
                ("?entity=user", "entity"),
                ("?entity=contact&limit=101", "limit"),
                ("?entity=contact&x=1", "x"),
            ],
        )
        .await;
}
