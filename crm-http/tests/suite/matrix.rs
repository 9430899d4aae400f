//! The permission matrix of the four roles, over HTTP (README "Roles and permissions").

use serde_json::json;

use super::{Server, Session, StoreFactory, id};

async fn status_of(r: super::Request) -> u16 {
    let r = r.send().await;
    if r.status >= 400 {
        // Every refusal is coded.
        assert!(r.code().starts_with('E'), "{}", r.text);
    }
    r.status
}

pub async fn permission_matrix(store: StoreFactory) {
    let (server, admin) = Server::admin(store).await;
    let manager = admin.add_role(&server, "manager").await;
    let sales = admin.add_role(&server, "sales").await;
    let reader = admin
        .add_user(&server, "reader@acme.test", "read_only")
        .await;

    let shared = admin.contact("Shared", "Contact").await;
    let trashed = admin.contact("In", "Trash").await;
    assert_eq!(
        admin
            .delete(&format!("/contacts/{}", id(&trashed)))
            .send()
            .await
            .status,
        204
    );
    let admin_task = admin
        .create("/tasks", json!({"text": "Admin's task"}))
        .await;

    // (session, name, writes records, sees all tasks, admin, manager-level)
    let roles: [(&Session, &str, bool, bool, bool, bool); 4] = [
        (&manager, "manager", true, true, false, true),
        (&sales, "sales", true, false, false, false),
        (&reader, "read_only", false, false, false, false),
        (&admin, "admin", true, true, true, true),
    ];
    for (s, role, writes, all_tasks, is_admin, merges) in roles {
        let ok_or = |allowed: bool, ok: u16, refused: u16| if allowed { ok } else { refused };
        let contact_path = format!("/contacts/{}", id(&shared));
        assert_eq!(status_of(s.get("/contacts")).await, 200, "{role} lists");
        assert_eq!(status_of(s.get(&contact_path)).await, 200, "{role} reads");
        assert_eq!(
            status_of(
                s.post("/contacts")
                    .json(json!({"first_name": "N", "last_name": role}))
            )
            .await,
            ok_or(writes, 201, 403),
            "{role} creates contacts"
        );
        assert_eq!(
            status_of(
                s.patch(&contact_path)
                    .header("if-match", "*")
                    .json(json!({"background": role}))
            )
            .await,
            ok_or(writes, 200, 403),
            "{role} updates contacts"
        );
        let victim = admin
            .create("/companies", json!({"name": format!("Victim of {role}")}))
            .await;
        assert_eq!(
            status_of(s.delete(&format!("/companies/{}", id(&victim)))).await,
            ok_or(writes, 204, 403),
            "{role} deletes companies"
        );
        assert_eq!(
            status_of(s.get("/contacts?deleted=only")).await,
            ok_or(is_admin, 200, 403),
            "{role} lists the trash"
        );
        assert_eq!(
            status_of(s.post(&format!("/contacts/{}/restore", id(&trashed)))).await,
            ok_or(is_admin, 200, 403),
            "{role} restores"
        );

        // Tasks: others' tasks do not exist for sales and read-only users.
        assert_eq!(
            status_of(s.get(&format!("/tasks/{}", id(&admin_task)))).await,
            ok_or(all_tasks, 200, 404),
            "{role} reads the admin's task"
        );
        let list = s.get("/tasks").send().await;
        assert_eq!(list.status, 200);
        let sees = list.body["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["id"] == admin_task["id"]);
        assert_eq!(sees, all_tasks, "{role} lists the admin's task");
        let own = s
            .post("/tasks")
            .json(json!({"text": format!("{role}'s task")}))
            .send()
            .await;
        assert_eq!(
            own.status,
            ok_or(writes, 201, 403),
            "{role} creates a task: {}",
            own.text
        );
        if own.status == 201 {
            assert_eq!(
                status_of(s.get(&format!("/tasks/{}", id(&own.body)))).await,
                200,
                "{role} reads its own task"
            );
        }

        // The workspace: the audit log, the configuration, the team, the caller's profile.
        let other_user = if is_admin {
            &manager.user_id
        } else {
            &admin.user_id
        };
        let workspace = [
            (
                s.get("/audit"),
                ok_or(merges, 200, 403),
                "reads the audit log",
            ),
            (s.get("/configuration"), 200, "reads the configuration"),
            (
                s.patch("/configuration")
                    .if_match_any()
                    .json(json!({"currency": "USD"})),
                ok_or(is_admin, 200, 403),
                "updates the configuration",
            ),
            (
                s.post("/users")
                    .json(json!({"email": format!("new-{role}@acme.test")})),
                ok_or(is_admin, 201, 403),
                "creates users",
            ),
            (s.get("/users"), 200, "lists users"),
            (
                s.patch(&format!("/users/{other_user}"))
                    .if_match_any()
                    .json(json!({"last_name": "Renamed"})),
                ok_or(is_admin, 200, 403),
                "updates another user",
            ),
            (
                s.patch("/me")
                    .if_match_any()
                    .json(json!({"last_name": "Me"})),
                200,
                "updates its own profile",
            ),
        ];
        for (request, expected, what) in workspace {
            assert_eq!(status_of(request).await, expected, "{role} {what}");
        }

        let w = admin
            .create("/contacts", json!({"first_name": "Win", "last_name": role}))
            .await;
        let l = admin
            .create(
                "/contacts",
                json!({"first_name": "Lose", "last_name": role}),
            )
            .await;
        assert_eq!(
            status_of(
                s.post(&format!("/contacts/{}/merge", id(&w)))
                    .json(json!({"loser_id": id(&l)}))
            )
            .await,
            ok_or(merges, 200, 403),
            "{role} merges contacts"
        );
    }
    let metrics = server.state.metrics_text();
    assert!(
        metrics.contains("crm_http_forbidden_total{route=\"/api/v1/contacts\"}")
            || metrics.contains("crm_http_forbidden_total{route=\"/contacts\"}"),
        "{metrics}"
    );
}
