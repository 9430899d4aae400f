//! The standalone server keeps the access log by default (`--no-access-log` turns it off)
//! and runs retention at start-up and every `--retention-interval`.

mod common;
use common::{Server, http, send, signup, start};

async fn read_and_count(server: &Server) -> usize {
    let admin = signup(server, "admin@acme.test").await;
    let c = send(
        http()
            .post(server.url("/contacts"))
            .header("authorization", &admin)
            .json(&serde_json::json!({ "first_name": "Grace", "last_name": "Hopper" })),
    )
    .await;
    assert_eq!(c.status, 201, "{:?}", c.body);
    let id = c.body["id"].as_str().unwrap().to_owned();
    let r = server.get(&format!("/contacts/{id}"), &admin).await;
    assert_eq!(r.status, 200);
    let log = server
        .get(&format!("/access-log?record_id={id}"), &admin)
        .await;
    assert_eq!(log.status, 200, "{:?}", log.body);
    log.body["data"].as_array().unwrap().len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_access_log_is_on_by_default_with_a_switch_and_retention_runs() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), &[], &[]);
    assert_eq!(read_and_count(&server).await, 1, "the GET is logged");
    assert!(
        server.log().contains("retention applied"),
        "{}",
        server.log()
    );
    drop(server);

    let other = tempfile::tempdir().unwrap();
    let server = start(
        other.path(),
        &["--no-access-log", "--retention-interval", "0"],
        &[],
    );
    assert_eq!(read_and_count(&server).await, 0, "switched off");
    assert!(!server.log().contains("retention applied"));
}
