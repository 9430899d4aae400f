//! `GET /dashboard`, and the weak `ETag`s of lists, `/dashboard` and `/me/recent`.

use serde_json::{Value, json};

use super::*;

/// `GET path` with `If-None-Match: tag`.
async fn conditional(s: &Session, path: &str, tag: &str) -> Response {
    s.get(path).header("if-none-match", tag).send().await
}

/// A `200` carrying a weak `ETag`; the same request with it is `304` (no body, same tag).
async fn tagged(s: &Session, path: &str) -> (Response, String) {
    let r = s.get(path).send().await;
    assert_eq!(r.status, 200, "{path}: {}", r.text);
    let tag = r.header("etag").expect("an ETag").to_owned();
    assert!(tag.starts_with("W/\""), "{path}: {tag}");
    let again = conditional(s, path, &tag).await;
    assert_eq!(again.status, 304, "{path}: {}", again.text);
    assert!(again.raw.is_empty());
    assert_eq!(again.header("etag"), Some(tag.as_str()));
    // Another tag, or a strong form of this one (weak comparison): as it should.
    assert_eq!(conditional(s, path, "W/\"0\"").await.status, 200);
    let strong = tag.trim_start_matches("W/");
    assert_eq!(conditional(s, path, strong).await.status, 304);
    (r, tag)
}

pub async fn dashboard_figures_etags_and_bad_input(store: StoreFactory) {
    let (server, admin) = Server::admin(store).await;
    let sales = admin.add_user(&server, "sales@dash.test", "sales").await;
    let me = admin.get("/me").send().await.body["user"]["id"].clone();
    for (name, stage, amount) in [
        ("A", "opportunity", 100),
        ("B", "opportunity", 50),
        ("C", "won", 7),
    ] {
        admin
            .create(
                "/deals",
                json!({ "name": name, "stage": stage, "amount": amount }),
            )
            .await;
    }
    let hot = admin
        .create(
            "/contacts",
            json!({ "first_name": "H", "last_name": "Ot", "status": "hot" }),
        )
        .await;
    admin
        .create(
            "/contacts",
            json!({ "first_name": "W", "last_name": "Arm", "status": "warm" }),
        )
        .await;
    // Monday 2030-01-07: one overdue, one today, one this week, one later.
    for due in ["2030-01-01", "2030-01-07", "2030-01-10", "2030-02-01"] {
        admin
            .create(
                "/tasks",
                json!({ "text": format!("due {due}"), "due_date": due, "owner_id": me }),
            )
            .await;
    }
    sales
        .create(
            "/tasks",
            json!({ "text": "sales' own", "due_date": "2030-01-07" }),
        )
        .await;

    let path = "/dashboard?today=2030-01-07";
    let (r, tag) = tagged(&admin, path).await;
    let d = &r.body;
    assert_eq!(
        (d["today"].as_str(), d["week_end"].as_str()),
        (Some("2030-01-07"), Some("2030-01-12"))
    );
    let stage = |d: &Value, s: &str| {
        d["deals_by_stage"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["stage"] == s)
            .map(|x| (x["count"].as_u64().unwrap(), x["amount"].as_i64().unwrap()))
    };
    assert_eq!(stage(d, "opportunity"), Some((2, 150)));
    assert_eq!(stage(d, "won"), Some((1, 7)));
    assert_eq!(d["deals_by_stage"][0]["label"], "Opportunity");
    let t = &d["tasks"];
    assert_eq!(
        [&t["overdue"], &t["today"], &t["this_week"], &t["open"]],
        [&json!(1), &json!(1), &json!(1), &json!(4)]
    );
    assert_eq!(t["next"][0]["due_date"], "2030-01-01");
    assert_eq!(
        t["next"].as_array().unwrap().len(),
        4,
        "only the caller's own"
    );
    assert_eq!(d["hot_contacts"].as_array().unwrap().len(), 1);
    assert_eq!(d["hot_contacts"][0]["id"], hot["id"]);
    assert_eq!(
        d["counts"],
        json!({ "companies": 0, "contacts": 2, "deals": 3, "notes": 0, "tasks": 5, "tags": 0 })
    );
    assert!(d["activity"].as_array().unwrap().len() <= 10);
    assert_eq!(
        d["activity"][0]["entity"], "contact",
        "newest first: contacts came after deals"
    );

    // A sales user counts only its own tasks.
    let r = sales.get(path).send().await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["counts"]["tasks"], 1);
    assert_eq!(r.body["tasks"]["today"], 1);
    assert_ne!(
        r.header("etag"),
        Some(tag.as_str()),
        "another caller, another answer"
    );

    // A change: a new answer with a new tag.
    admin
        .create(
            "/deals",
            json!({ "name": "D", "stage": "won", "amount": 3 }),
        )
        .await;
    let r = conditional(&admin, path, &tag).await;
    assert_eq!(r.status, 200);
    assert_eq!(stage(&r.body, "won"), Some((2, 10)));
    assert_ne!(r.header("etag"), Some(tag.as_str()));
    // Without `today`: the server's UTC date.
    let r = admin.get("/dashboard").send().await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.body["today"].as_str().is_some_and(|s| s.len() == 10));

    admin
        .assert_bad_queries(
            "/dashboard?",
            &[
                ("today=2030-13-01", "today"),
                ("today=tomorrow", "today"),
                ("today=", "today"),
                ("limit=5", "limit"),
            ],
        )
        .await;
    assert_eq!(server.client().get("/dashboard").send().await.status, 401);
}

pub async fn lists_and_recently_viewed_carry_weak_etags(store: StoreFactory) {
    let (_server, admin) = Server::admin(store).await;
    let c = admin.contact("Grace", "Hopper").await;
    let cid = id(&c);
    admin.create("/tasks", json!({ "text": "call" })).await;
    let (_, tasks_tag) = tagged(&admin, "/tasks?limit=100").await;
    for path in [
        format!("/contacts?ids={cid}"),
        "/contacts?sort=-created_at".to_owned(),
        "/users".to_owned(),
        "/search?q=gra".to_owned(),
        "/activity".to_owned(),
        "/audit".to_owned(),
    ] {
        tagged(&admin, &path).await;
    }
    // A change to the list: the old tag no longer matches.
    admin.create("/tasks", json!({ "text": "write" })).await;
    let r = conditional(&admin, "/tasks?limit=100", &tasks_tag).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["data"].as_array().unwrap().len(), 2);

    // Recently viewed: written in the background, then tagged like a list.
    assert_eq!(
        admin.get(&format!("/contacts/{cid}")).send().await.status,
        200
    );
    let mut seen = false;
    for _ in 0..300 {
        let r = admin.get("/me/recent?entity=contact").send().await;
        if r.body["data"].as_array().is_some_and(|d| d.len() == 1) {
            seen = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(seen, "the view was recorded");
    tagged(&admin, "/me/recent?entity=contact").await;
    // `*` matches any current answer.
    let r = conditional(&admin, "/tasks", "*").await;
    assert_eq!(r.status, 304);
}
