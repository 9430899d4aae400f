//! Data protection over HTTP: export, erasure and anonymization, and their refusals.

use serde_json::json;

use super::{Server, StoreFactory, id, version};

const MARKERS: &[&str] = &[
    "hxfirst",
    "hxlast",
    "hxtitle",
    "hxbackground",
    "hxmail",
    "5550123498",
    "hxlinked",
    "hxretitled",
    "hxnote",
];

pub async fn export_erase_and_anonymize(store: StoreFactory) {
    let (server, admin) = Server::admin(store).await;
    let manager = admin.add_role(&server, "manager").await;
    let sales = admin.add_role(&server, "sales").await;
    let c = sales
        .create(
            "/contacts",
            json!({
                "first_name": "Hxfirst", "last_name": "Hxlast", "title": "hxtitle",
                "background": "hxbackground",
                "emails": [{"email": "hxmail@hxmail.test", "type": "Work"}],
                "phones": [{"number": "+15550123498", "type": "Work"}],
                "linkedin_url": "https://linkedin.example/in/hxlinked",
            }),
        )
        .await;
    let cid = id(&c);
    let r = sales
        .patch(&format!("/contacts/{cid}"))
        .if_match(version(&c))
        .json(json!({"title": "hxretitled"}))
        .send()
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    sales
        .create("/notes", json!({"contact_id": cid, "text": "hxnote call"}))
        .await;
    let deal = sales
        .create("/deals", json!({"name": "Renewal", "contact_ids": [cid]}))
        .await;
    assert_eq!(
        sales.get(&format!("/contacts/{cid}")).send().await.status,
        200
    );
    // Consent: recorded per purpose, filtered, bad input refused.
    let r = sales
        .post(&format!("/contacts/{cid}/consents"))
        .json(json!({"purpose": "newsletter", "status": "granted", "source": "web form"}))
        .send()
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["has_newsletter"], true);
    assert_eq!(r.body["consents"][0]["purpose"], "newsletter");
    let r = sales.get("/contacts?consented=newsletter").send().await;
    assert_eq!(r.body["data"].as_array().unwrap().len(), 1, "{}", r.text);
    sales
        .get("/contacts?consented=Not%20A%20Purpose")
        .refused(400, "E2003")
        .await;
    sales
        .post(&format!("/contacts/{cid}/consents"))
        .json(json!({"purpose": "", "status": "granted"}))
        .refused(422, "E2001")
        .await;
    sales
        .post(&format!("/contacts/{cid}/consents"))
        .json(json!({"purpose": "newsletter", "status": "maybe"}))
        .refused(400, "E2004")
        .await;
    let r = sales.get("/search?q=hxfirst").send().await;
    assert_eq!(
        r.body["contacts"].as_array().unwrap().len(),
        1,
        "{}",
        r.text
    );

    // The right of access: admins and managers.
    let path = format!("/contacts/{cid}/personal-data");
    for s in [&admin, &manager] {
        let r = s.get(&path).send().await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.body["contact"]["id"], cid.as_str());
        assert_eq!(r.body["notes"].as_array().unwrap().len(), 1);
        assert_eq!(r.body["deals"][0]["id"], deal["id"]);
        assert_eq!(r.body["header"]["subject"], "contact");
        assert!(r.body["audit"].as_array().unwrap().len() >= 3);
        assert_eq!(r.body["consent_history"].as_array().unwrap().len(), 1);
    }
    sales.get(&path).refused(403, "E1002").await;
    admin
        .get("/contacts/not-an-id/personal-data")
        .refused(400, "E2004")
        .await;

    // Erasure: admins only; unknown ids are 404; nothing changes on a refusal.
    let erase = format!("/contacts/{cid}/erase");
    sales.post(&erase).refused(403, "E1002").await;
    manager.post(&erase).refused(403, "E1002").await;
    admin
        .post("/contacts/0190a4b4-0000-7000-8000-000000000000/erase")
        .refused(404, "E5001")
        .await;
    assert_eq!(
        sales.get(&format!("/contacts/{cid}")).send().await.status,
        200
    );
    let r = admin.post(&erase).send().await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["already_erased"], false);
    let r = admin.post(&erase).send().await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["already_erased"], true);
    admin.get(&path).refused(404, "E5001").await;

    let mut seen = String::new();
    for s in [&admin, &manager, &sales] {
        for p in [
            "/contacts?deleted=include&limit=100",
            "/contacts?limit=100",
            "/notes?limit=100",
            "/deals?limit=100",
            "/tasks?limit=100",
            "/companies?limit=100",
            "/audit?limit=100",
            "/activity?limit=100",
            "/changes?limit=1000",
            "/me/recent?entity=contact",
            "/me/recent?entity=note",
            "/search?q=hxfirst",
            "/search?q=hxmail",
            "/contacts?q=5550123498",
        ] {
            seen += &s.get(p).send().await.text;
        }
        seen += &s
            .get(&format!("/users/{}/personal-data", s.user_id))
            .send()
            .await
            .text;
    }
    let seen = seen.to_lowercase();
    assert!(seen.contains("renewal"), "the reads answered");
    for m in MARKERS {
        assert!(!seen.contains(m), "{m} is still served");
    }

    // A user's own export, then their anonymization.
    let r = sales
        .get(&format!("/users/{}/personal-data", sales.user_id))
        .send()
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["profile"]["email"], "sales@acme.test");
    assert!(!r.body["sessions"].as_array().unwrap().is_empty());
    manager
        .get(&format!("/users/{}/personal-data", sales.user_id))
        .refused(403, "E1002")
        .await;
    let anon = format!("/users/{}/anonymize", sales.user_id);
    manager.post(&anon).refused(403, "E1002").await;
    admin
        .post(&format!("/users/{}/anonymize", admin.user_id))
        .refused(403, "E1002")
        .await;
    let r = admin.post(&anon).send().await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = admin.get(&format!("/users/{}", sales.user_id)).send().await;
    assert_eq!(r.body["last_name"], "user 1", "{}", r.text);
    assert_eq!(r.body["disabled"], true);
    assert_eq!(sales.get("/contacts").send().await.status, 401);
    let r = admin.get(&format!("/deals/{}", id(&deal))).send().await;
    assert_eq!(
        r.body["sales_id"],
        sales.user_id.as_str(),
        "ownership stays"
    );
    let audit = admin.get("/audit?limit=100").send().await.text;
    assert!(!audit.contains("sales@acme.test"));
}
