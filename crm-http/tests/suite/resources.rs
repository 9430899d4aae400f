//! CRUD of every resource, ETags, paging, search, activity, audit, users, configuration
//! and workspace isolation.

use serde_json::{Value, json};

use super::{Options, Server, StoreFactory, id, version};

pub async fn contacts_crud_with_etags(store: StoreFactory) {
    let (_server, admin) = Server::admin(store).await;
    let r = admin
        .post("/contacts")
        .json(json!({
            "first_name": "Grace", "last_name": "Hopper", "status": "warm",
            "emails": [{"email": "grace@navy.test", "type": "Work"}],
        }))
        .send()
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let c = r.body.clone();
    let cid = id(&c);
    assert_eq!(version(&c), 1);
    assert_eq!(r.etag().as_deref(), Some("\"1\""));
    assert_eq!(
        r.header("location"),
        Some(format!("/api/v1/contacts/{cid}").as_str())
    );

    let r = admin.get(&format!("/contacts/{cid}")).send().await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["first_name"], "Grace");
    assert_eq!(r.etag().as_deref(), Some("\"1\""));
    // If-None-Match with the current version: 304, no body.
    let r = admin
        .get(&format!("/contacts/{cid}"))
        .header("if-none-match", "\"1\"")
        .send()
        .await;
    assert_eq!(r.status, 304);
    assert!(r.text.is_empty());
    assert_eq!(r.etag().as_deref(), Some("\"1\""));

    // PATCH needs If-Match: missing 428, stale 412, current 200.
    let path = format!("/contacts/{cid}");
    admin
        .patch(&path)
        .json(json!({"title": "Rear Admiral"}))
        .refused(428, "E2004")
        .await;
    let r = admin
        .patch(&path)
        .if_match(1)
        .json(json!({"title": "Rear Admiral"}))
        .send()
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["title"], "Rear Admiral");
    assert_eq!(r.etag().as_deref(), Some("\"2\""));
    admin
        .patch(&path)
        .if_match(1)
        .json(json!({"title": "Lost update"}))
        .refused(412, "E5002")
        .await;
    // The old version is no longer "not modified".
    let r = admin
        .get(&path)
        .header("if-none-match", "\"1\"")
        .send()
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["title"], "Rear Admiral");
    // `null` clears a field; `*` matches any version.
    let r = admin
        .patch(&path)
        .header("if-match", "*")
        .json(json!({"title": null}))
        .send()
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.body["title"].is_null());
    // Validation is the core's: every failing field listed.
    let r = admin
        .patch(&path)
        .if_match(3)
        .json(json!({"first_name": "", "status": "lukewarm"}))
        .refused(422, "E2001")
        .await;
    assert_eq!(r.sorted_fields(), ["first_name", "status"]);

    // Delete with a stale If-Match is refused; then soft delete, 404, trash, restore.
    admin.delete(&path).if_match(1).refused(412, "E5002").await;
    assert_eq!(admin.delete(&path).send().await.status, 204);
    admin.get(&path).refused(404, "E5001").await;
    let trash = admin.get("/contacts?deleted=only").send().await;
    assert_eq!(trash.status, 200, "{}", trash.text);
    assert_eq!(trash.body["data"].as_array().unwrap().len(), 1);
    let r = admin.post(&format!("{path}/restore")).send().await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.body["deleted_at"].is_null());
    assert_eq!(admin.get(&path).send().await.status, 200);
    // Purge takes a record from the trash, permanently; a live record is not in the trash
    // (409, not 404: it exists), nor can it be restored.
    admin
        .post(&format!("{path}/purge"))
        .refused(409, "E5005")
        .await;
    admin
        .post(&format!("{path}/restore"))
        .refused(409, "E5005")
        .await;
    assert_eq!(admin.delete(&path).send().await.status, 204);
    assert_eq!(
        admin.post(&format!("{path}/purge")).send().await.status,
        204
    );
    admin
        .post(&format!("{path}/restore"))
        .refused(404, "E5001")
        .await;
}

/// Create, read, list, update and delete for each record kind.
pub async fn every_resource_crud(store: StoreFactory) {
    let (_server, admin) = Server::admin(store).await;
    let company = admin
        .create("/companies", json!({"name": "Acme Corp", "city": "Paris"}))
        .await;
    let contact = admin
        .create(
            "/contacts",
            json!({"first_name": "Ada", "last_name": "Lovelace", "company_id": id(&company)}),
        )
        .await;
    assert_eq!(contact["company_name"], "Acme Corp");
    let deal = admin
        .create("/deals", json!({"name": "Big deal", "company_id": id(&company), "contact_ids": [id(&contact)], "amount": 150000}))
        .await;
    assert_eq!(deal["stage"], "opportunity");
    let note = admin
        .create(
            "/notes",
            json!({"contact_id": id(&contact), "text": "Met at the conference", "status": "hot"}),
        )
        .await;
    let task = admin
        .create(
            "/tasks",
            json!({"text": "Call back", "contact_id": id(&contact), "priority": "high"}),
        )
        .await;
    let tag = admin
        .create("/tags", json!({"name": "vip", "color": "#ff0000"}))
        .await;

    let cases: [(&str, &Value, Value, &str, &str); 6] = [
        (
            "/companies",
            &company,
            json!({"city": "Lyon"}),
            "city",
            "Lyon",
        ),
        (
            "/contacts",
            &contact,
            json!({"last_name": "King"}),
            "last_name",
            "King",
        ),
        (
            "/deals",
            &deal,
            json!({"description": "Renewal"}),
            "description",
            "Renewal",
        ),
        ("/notes", &note, json!({"text": "Edited"}), "text", "Edited"),
        (
            "/tasks",
            &task,
            json!({"text": "Call again"}),
            "text",
            "Call again",
        ),
        ("/tags", &tag, json!({"name": "VIP"}), "name", "VIP"),
    ];
    for (base, record, patch, field, value) in cases {
        let path = format!("{base}/{}", id(record));
        let r = admin.get(&path).send().await;
        assert_eq!(r.status, 200, "GET {path}: {}", r.text);
        let list = admin.get(base).send().await;
        assert_eq!(list.status, 200, "{}", list.text);
        assert!(
            list.body["data"]
                .as_array()
                .unwrap()
                .iter()
                .any(|x| x["id"] == record["id"]),
            "{base} lists the record"
        );
        assert!(list.body.get("next_cursor").is_some());
        // (A note moved its contact forward: read the current version first.)
        let current = version(&r.body);
        assert!(current >= version(record));
        let r = admin
            .patch(&path)
            .if_match(current)
            .json(patch)
            .send()
            .await;
        assert_eq!(r.status, 200, "PATCH {path}: {}", r.text);
        assert_eq!(r.body[field], value, "{path}");
        assert_eq!(version(&r.body), current + 1);
    }
    // The contact note moved the contact to "hot".
    let c = admin
        .get(&format!("/contacts/{}", id(&contact)))
        .send()
        .await;
    assert_eq!(c.body["status"], "hot");
    // Completing a task.
    let t = admin.get(&format!("/tasks/{}", id(&task))).send().await;
    let r = admin
        .post(&format!("/tasks/{}/complete", id(&task)))
        .if_match(version(&t.body))
        .json(json!({"completed": true}))
        .send()
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["completed"], true);
    assert!(!r.body["done_date"].is_null());
    // Filters from the query string.
    let r = admin.get("/tasks?completed=true").send().await;
    assert_eq!(r.body["data"].as_array().unwrap().len(), 1);
    let r = admin.get("/tasks?completed=false").send().await;
    assert_eq!(r.body["data"].as_array().unwrap().len(), 0);
    let r = admin
        .get(&format!("/contacts?company_id={}", id(&company)))
        .send()
        .await;
    assert_eq!(r.body["data"].as_array().unwrap().len(), 1);
    // Delete every kind.
    for (base, record) in [
        ("/notes", &note),
        ("/tasks", &task),
        ("/deals", &deal),
        ("/contacts", &contact),
        ("/companies", &company),
        ("/tags", &tag),
    ] {
        let path = format!("{base}/{}", id(record));
        assert_eq!(
            admin.delete(&path).send().await.status,
            204,
            "DELETE {path}"
        );
        admin.get(&path).refused(404, "E5001").await;
    }
}

pub async fn paging_to_the_end(store: StoreFactory) {
    let (_server, admin) = Server::admin(store).await;
    for i in 0..23 {
        admin
            .create("/companies", json!({"name": format!("Company {i:02}")}))
            .await;
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &cursor {
            Some(c) => format!("/companies?limit=5&sort=name&cursor={c}"),
            None => "/companies?limit=5&sort=name".to_owned(),
        };
        let r = admin.get(&path).send().await;
        assert_eq!(r.status, 200, "{}", r.text);
        pages += 1;
        for c in r.body["data"].as_array().unwrap() {
            seen.push(c["name"].as_str().unwrap().to_owned());
        }
        match r.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(pages, 5);
    let expected: Vec<String> = (0..23).map(|i| format!("Company {i:02}")).collect();
    assert_eq!(seen, expected, "every record once, in order");
    // Descending.
    let r = admin.get("/companies?limit=1&sort=-name").send().await;
    assert_eq!(r.body["data"][0]["name"], "Company 22");
    // A cursor of another sort is refused.
    let r = admin.get("/companies?limit=5&sort=name").send().await;
    let c = r.body["next_cursor"].as_str().unwrap();
    admin
        .get(&format!("/companies?sort=-name&cursor={c}"))
        .refused(400, "E2002")
        .await;
}

pub async fn search_activity_and_audit(store: StoreFactory) {
    let (_server, admin) = Server::admin(store).await;
    admin
        .create("/companies", json!({"name": "Globex Corporation"}))
        .await;
    admin
        .create(
            "/contacts",
            json!({"first_name": "Hank", "last_name": "Scorpio", "title": "Globetrotter"}),
        )
        .await;
    admin
        .create("/deals", json!({"name": "Globex merger"}))
        .await;
    admin.contact("Homer", "Simpson").await;

    let r = admin.get("/search?q=glob").send().await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["companies"].as_array().unwrap().len(), 1);
    assert_eq!(r.body["contacts"].as_array().unwrap().len(), 1);
    assert_eq!(r.body["deals"].as_array().unwrap().len(), 1);
    let r = admin.get("/contacts?q=hom").send().await;
    assert_eq!(r.body["data"].as_array().unwrap().len(), 1);
    assert_eq!(r.body["data"][0]["last_name"], "Simpson");
    admin.get("/search").refused(400, "E2003").await;
    admin.get("/search?q=x&limit=0").refused(400, "E2003").await;
    admin.get("/search?q=x&foo=1").refused(400, "E2003").await;

    let r = admin.get("/activity?limit=2").send().await;
    assert_eq!(r.status, 200, "{}", r.text);
    let items = r.body["data"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["label"], "Homer Simpson", "newest first");
    let next = r.body["next_cursor"].as_str().unwrap();
    let r2 = admin
        .get(&format!("/activity?limit=2&cursor={next}"))
        .send()
        .await;
    assert_eq!(r2.status, 200, "{}", r2.text);
    let mut labels: Vec<String> = items
        .iter()
        .chain(r2.body["data"].as_array().unwrap())
        .map(|i| i["label"].as_str().unwrap().to_owned())
        .collect();
    let last = admin
        .get(&format!(
            "/activity?limit=2&cursor={}",
            r2.body["next_cursor"].as_str().unwrap()
        ))
        .send()
        .await;
    assert!(
        last.body["data"].as_array().unwrap().is_empty(),
        "{}",
        last.text
    );
    assert!(last.body["next_cursor"].is_null());
    labels.sort();
    assert_eq!(
        labels,
        vec![
            "Globex Corporation",
            "Globex merger",
            "Hank Scorpio",
            "Homer Simpson"
        ],
        "each creation once across pages"
    );

    let r = admin
        .get("/audit?entity=contact&action=create")
        .send()
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["data"].as_array().unwrap().len(), 2);
    assert!(r.body["next_cursor"].is_null());
    admin
        .get("/audit?entity=spaceship")
        .refused(400, "E2003")
        .await;
}

pub async fn deals_archive_move_and_merge(store: StoreFactory) {
    let (_server, admin) = Server::admin(store).await;
    let deal = admin.create("/deals", json!({"name": "Pipeline"})).await;
    let path = format!("/deals/{}", id(&deal));
    let r = admin
        .post(&format!("{path}/move"))
        .if_match(version(&deal))
        .json(json!({"stage": "won", "position": 0}))
        .send()
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["stage"], "won");
    admin
        .post(&format!("{path}/move"))
        .if_match(version(&r.body))
        .json(json!({"stage": "no-such-stage"}))
        .refused(422, "E2001")
        .await;
    let v = version(&r.body);
    admin
        .post(&format!("{path}/archive"))
        .if_match(v + 7)
        .refused(412, "E5002")
        .await;
    let r = admin
        .post(&format!("{path}/archive"))
        .if_match(v)
        .send()
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(!r.body["archived_at"].is_null());
    admin
        .post(&format!("{path}/archive"))
        .if_match(version(&r.body))
        .refused(409, "E5005")
        .await;
    let r = admin
        .post(&format!("{path}/unarchive"))
        .if_match(version(&r.body))
        .send()
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.body["archived_at"].is_null());

    let winner = admin.contact("Jane", "Doe").await;
    let loser = admin
        .create(
            "/contacts",
            json!({"first_name": "Jane", "last_name": "Doe", "title": "CEO"}),
        )
        .await;
    admin
        .create("/notes", json!({"contact_id": id(&loser), "text": "hello"}))
        .await;
    let r = admin
        .post(&format!("/contacts/{}/merge", id(&winner)))
        .json(json!({"loser_id": id(&loser)}))
        .send()
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["title"], "CEO", "empty fields filled from the loser");
    admin
        .get(&format!("/contacts/{}", id(&loser)))
        .refused(404, "E5001")
        .await;
    let notes = admin
        .get(&format!("/notes?contact_id={}", id(&winner)))
        .send()
        .await;
    assert_eq!(notes.body["data"].as_array().unwrap().len(), 1);
    admin
        .post(&format!("/contacts/{}/merge", id(&winner)))
        .json(json!({"loser_id": id(&winner)}))
        .refused(409, "E5005")
        .await;
}

pub async fn users_and_me(store: StoreFactory) {
    let (server, admin) = Server::admin(store).await;
    let r = admin
        .post("/users")
        .json(json!({"email": "Mia@Acme.test", "first_name": "Mia", "role": "manager", "password": "pw"}))
        .send()
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["role"], "manager");
    assert!(r.body.get("password").is_none());
    let mia = id(&r.body);
    // Duplicate email.
    admin
        .post("/users")
        .json(json!({"email": "mia@acme.test"}))
        .refused(409, "E5003")
        .await;
    let list = admin.get("/users?sort=email").send().await;
    assert_eq!(list.status, 200, "{}", list.text);
    assert_eq!(list.body["data"].as_array().unwrap().len(), 2);
    let r = admin.get("/users?role=manager").send().await;
    assert_eq!(r.body["data"].as_array().unwrap().len(), 1);

    let u = admin.get(&format!("/users/{mia}")).send().await;
    let r = admin
        .post(&format!("/users/{mia}/role"))
        .if_match(version(&u.body))
        .json(json!({"role": "sales"}))
        .send()
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["role"], "sales");
    let r = admin
        .patch(&format!("/users/{mia}"))
        .if_match(version(&r.body))
        .json(json!({"last_name": "Wallace"}))
        .send()
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["last_name"], "Wallace");

    // The admin sets a password; Mia signs in and edits her own profile.
    let r = admin
        .post(&format!("/users/{mia}/password"))
        .json(json!({"password": "new pw"}))
        .send()
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
    let me = super::login(&server, &admin.workspace_id, "mia@acme.test", "new pw").await;
    let r = me.get("/me").send().await;
    assert_eq!(r.body["user"]["id"], mia.as_str());
    let v = version(&r.body["user"]);
    let r = me
        .patch("/me")
        .if_match(v)
        .json(json!({"first_name": "Mia-Rose"}))
        .send()
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["first_name"], "Mia-Rose");
    // Nobody changes their own role.
    let r = me
        .post(&format!("/users/{mia}/role"))
        .if_match(version(&r.body))
        .json(json!({"role": "admin"}))
        .send()
        .await;
    assert!(r.status == 403 || r.status == 422, "{}", r.text);
    assert!(
        r.code() == "E1002" || r.fields() == vec!["role"],
        "{}",
        r.text
    );
    let r = me.get("/me").send().await;
    assert_eq!(r.body["user"]["role"], "sales");
}

pub async fn configuration_with_etags(store: StoreFactory) {
    let (_server, admin) = Server::admin(store).await;
    let r = admin.get("/configuration").send().await;
    assert_eq!(r.status, 200, "{}", r.text);
    let v = version(&r.body);
    assert_eq!(r.etag(), Some(format!("\"{v}\"")));
    let r304 = admin
        .get("/configuration")
        .header("if-none-match", &format!("W/\"{v}\""))
        .send()
        .await;
    assert_eq!(r304.status, 304);
    let r = admin
        .patch("/configuration")
        .if_match(v)
        .json(json!({"currency": "EUR"}))
        .send()
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["currency"], "EUR");
    admin
        .patch("/configuration")
        .if_match(v)
        .json(json!({"currency": "USD"}))
        .refused(412, "E5002")
        .await;
}

pub async fn workspace_isolation(store: StoreFactory) {
    let server = Server::with(store, Options::http(|h| h.open_signup = true)).await;
    let a = server.bootstrap().await;
    let c = server.client();
    let r = c
        .post("/auth/signup")
        .json(
            json!({"workspace_name": "Other", "email": "admin@acme.test", "password": "other pw"}),
        )
        .send()
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let b = super::Session::from_tokens(c, &r.body);
    assert_ne!(a.workspace_id, b.workspace_id);

    let secret = a.contact("Secret", "Agent").await;
    let path = format!("/contacts/{}", id(&secret));
    b.get(&path).refused(404, "E5001").await;
    b.patch(&path)
        .if_match(1)
        .json(json!({"first_name": "Hacked"}))
        .refused(404, "E5001")
        .await;
    assert_eq!(b.delete(&path).send().await.status, 404);
    let list = b.get("/contacts").send().await;
    assert!(list.body["data"].as_array().unwrap().is_empty());
    let search = b.get("/search?q=secret").send().await;
    assert!(search.body["contacts"].as_array().unwrap().is_empty());
    b.get(&format!("/users/{}", a.user_id))
        .refused(404, "E5001")
        .await;
    // Same email, other workspace: each login lands in its own workspace.
    let again = super::login(&server, &b.workspace_id, "admin@acme.test", "other pw").await;
    assert_eq!(again.workspace_id, b.workspace_id);
    assert_eq!(a.get(&path).send().await.status, 200);
}
