//! Each bad input answered with its coded error — never a bare framework text or a 500.

use serde_json::json;

use super::{Options, Server, StoreFactory, id};

pub async fn bad_inputs_are_coded(store: StoreFactory) {
    let (server, admin) = Server::admin(store).await;

    // Bodies.
    let r = admin
        .post("/contacts")
        .raw("{\"first_name\": ", Some("application/json"))
        .refused(400, "E2004")
        .await;
    assert_eq!(r.fields(), vec!["body"]);
    admin
        .post("/contacts")
        .raw("{}{}", Some("application/json"))
        .refused(400, "E2004")
        .await;
    admin
        .post("/contacts")
        .raw("first_name=x", Some("application/x-www-form-urlencoded"))
        .refused(415, "E4004")
        .await;
    admin
        .post("/contacts")
        .raw("{\"first_name\": \"A\", \"last_name\": \"B\"}", None)
        .refused(415, "E4004")
        .await;
    // `application/json; charset=utf-8` and `+json` types are JSON.
    let r = admin
        .post("/contacts")
        .raw(
            "{\"first_name\": \"A\", \"last_name\": \"B\"}",
            Some("application/json; charset=utf-8"),
        )
        .send()
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let r = admin
        .post("/contacts")
        .json(json!({"first_name": "A", "last_name": "B", "nickname": "x"}))
        .refused(400, "E2004")
        .await;
    assert_eq!(r.fields(), vec!["nickname"]);
    assert_eq!(r.body["error"]["fields"][0]["issue"], "not_allowed");
    let r = admin
        .post("/contacts")
        .json(json!({"first_name": 5, "last_name": "B"}))
        .refused(400, "E2004")
        .await;
    assert_eq!(r.fields(), vec!["first_name"]);
    let r = admin
        .post("/contacts")
        .json(json!({"first_name": "A", "emails": [{"email": "a@b.test", "type": "Pager"}]}))
        .refused(400, "E2004")
        .await;
    assert_eq!(r.fields(), vec!["emails[0].type"]);
    let r = server.try_login(json!({"email": "admin@acme.test"})).await;
    r.assert_error(400, "E2004");
    assert_eq!(r.fields(), vec!["password"]);
    assert_eq!(r.body["error"]["fields"][0]["issue"], "required");
    // The submitted value is never echoed back.
    let r = admin
        .post("/contacts")
        .json(json!({"first_name": ["s3cr3t-value"], "last_name": "B"}))
        .refused(400, "E2004")
        .await;
    assert!(!r.text.contains("s3cr3t-value"), "{}", r.text);

    // Query strings.
    for q in [
        "limit=abc",
        "limit=0",
        "limit=1000",
        "sort=shoe_size",
        "shoe_size=42",
        "status=warm&status=hot",
        "deleted=sometimes",
        "has_newsletter=maybe",
        "company_id=not-a-uuid",
    ] {
        admin
            .get(&format!("/contacts?{q}"))
            .refused(400, "E2003")
            .await;
    }
    admin
        .get("/contacts?cursor=!!garbage!!")
        .refused(400, "E2002")
        .await;
    admin
        .get("/activity?cursor=nope")
        .refused(400, "E2003")
        .await;

    // Path ids and preconditions.
    let r = admin
        .get("/contacts/not-a-uuid")
        .refused(400, "E2004")
        .await;
    assert_eq!(r.fields(), vec!["id"]);
    let c = admin.create("/companies", json!({"name": "Initech"})).await;
    let path = format!("/companies/{}", id(&c));
    // The same rename under a given `If-Match` value.
    let rename = |if_match: &str| {
        admin
            .patch(&path)
            .header("if-match", if_match)
            .json(json!({"name": "Initrode"}))
    };
    rename("W/\"1\"").refused(412, "E5002").await;
    rename("\"1\", \"2\"").refused(400, "E2004").await;
    // A value that is no entity tag is a malformed header, not a failed precondition.
    for bad in ["", "one", "\"1", "W/1"] {
        let r = rename(bad).refused(400, "E2004").await;
        assert_eq!(r.fields(), vec!["If-Match"], "{bad:?}");
    }
    // An opaque tag that is no version never matches, commas inside it included.
    for tag in ["\"v1\"", "W/\"a,b\"", "0535042284767558321585398337"] {
        rename(tag).refused(412, "E5002").await;
    }
    // Bodies are objects: an array is not read field by field.
    for body in ["[null, null]", "[\"Initrode\"]", "\"Initrode\"", "7"] {
        let r = admin
            .patch(&path)
            .if_match(1)
            .raw(body, Some("application/json"))
            .refused(400, "E2004")
            .await;
        assert_eq!(r.fields(), vec!["body"], "{body}");
    }
    // Unknown records.
    admin
        .get(&format!("/companies/{}", uuid::Uuid::now_v7()))
        .refused(404, "E5001")
        .await;
    admin
        .patch(&format!("/companies/{}", uuid::Uuid::now_v7()))
        .if_match(1)
        .json(json!({"name": "x"}))
        .refused(404, "E5001")
        .await;
    // Validation lists every failing field.
    let r = admin
        .post("/tags")
        .json(json!({"name": "", "color": "red"}))
        .refused(422, "E2001")
        .await;
    assert_eq!(r.sorted_fields(), ["color", "name"]);
}

pub async fn oversized_bodies_are_413(store: StoreFactory) {
    let server = Server::with(store, Options::http(|h| h.body_limit = 2048)).await;
    let admin = server.bootstrap().await;
    let big = format!(
        "{{\"first_name\": \"{}\", \"last_name\": \"B\"}}",
        "x".repeat(4096)
    );
    admin
        .post("/contacts")
        .raw(big, Some("application/json"))
        .refused(413, "E4003")
        .await;
    // Under the limit, the same request is fine.
    let r = admin
        .post("/contacts")
        .json(json!({"first_name": "x".repeat(100), "last_name": "B"}))
        .send()
        .await;
    assert_eq!(r.status, 201, "{}", r.text);

    // The default limit is 1 MiB.
    let (_server, admin) = Server::admin(store).await;
    let big = format!(
        "{{\"first_name\": \"{}\", \"last_name\": \"B\"}}",
        "x".repeat(1024 * 1024 + 10)
    );
    admin
        .post("/contacts")
        .raw(big, Some("application/json"))
        .refused(413, "E4003")
        .await;
}

pub async fn unknown_routes_and_methods(store: StoreFactory) {
    let (server, admin) = Server::admin(store).await;
    let r = admin.get("/spaceships").refused(404, "E5001").await;
    assert_eq!(
        r.body["error"]["message"],
        crm_http::handlers::misc::NO_SUCH_ENDPOINT
    );
    let r = admin.request_put("/contacts").await;
    r.assert_error(405, "E2004");
    let allow = r.header("allow").unwrap_or_default();
    assert!(allow.contains("GET") && allow.contains("POST"), "{allow:?}");
    // Even unauthenticated.
    server.client().get("/nowhere").refused(404, "E5001").await;
}

impl super::Session {
    async fn request_put(&self, path: &str) -> super::Response {
        self.client
            .request(reqwest::Method::PUT, path)
            .bearer(&self.access)
            .send()
            .await
    }
}
