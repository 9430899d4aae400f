//! The OpenAPI 3.0 document of the router, generated from the route table
//! (`routes`) and from the core's types: request schemas come from serializing each
//! input type's default value (so a field added to `ContactInput` appears here), list
//! parameters from each kind's filterable fields ([`EntityKind::fields`]), roles from
//! [`Role::ALL`], error codes from [`ErrorKind::ALL`].
//!
//! Paths are relative to where the host mounts the router.

use std::sync::OnceLock;

use crm_core::id::WorkspaceId;
use crm_core::model::{
    CompanyInput, CompanyPatch, Configuration, ContactInput, ContactPatch, DealInput, DealPatch,
    EntityKind, NoteInput, NotePatch, Role, TagInput, TagPatch, TaskInput, TaskPatch, UserInput,
    UserPatch,
};
use crm_core::query::FieldType;
use crm_core::{ErrorKind, Timestamp};
use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::routes::{Access, Precondition, QueryDoc, RouteDef, table};

/// The document (built once).
pub fn document() -> &'static Value {
    static DOC: OnceLock<Value> = OnceLock::new();
    DOC.get_or_init(|| build(&table()))
}

fn sample_schema(v: &Value) -> Value {
    match v {
        Value::Null => json!({ "nullable": true }),
        Value::Bool(_) => json!({ "type": "boolean" }),
        Value::Number(n) if n.is_f64() => json!({ "type": "number" }),
        Value::Number(_) => json!({ "type": "integer" }),
        Value::String(_) => json!({ "type": "string" }),
        Value::Array(items) => json!({
            "type": "array",
            "items": items.first().map_or_else(|| json!({}), sample_schema),
        }),
        Value::Object(m) => {
            let props: Map<String, Value> = m
                .iter()
                .map(|(k, v)| (k.clone(), sample_schema(v)))
                .collect();
            json!({ "type": "object", "properties": props })
        }
    }
}

fn properties_of<T: Serialize>(sample: &T) -> Map<String, Value> {
    match sample_schema(&serde_json::to_value(sample).unwrap_or_default()) {
        Value::Object(mut o) => match o.remove("properties") {
            Some(Value::Object(p)) => p,
            _ => Map::new(),
        },
        _ => Map::new(),
    }
}

fn object(props: Map<String, Value>, required: &[&str]) -> Value {
    let mut o = json!({ "type": "object", "properties": props });
    if !required.is_empty() {
        o["required"] = json!(required);
    }
    o
}

fn obj(props: Value, required: &[&str]) -> Value {
    match props {
        Value::Object(m) => object(m, required),
        _ => object(Map::new(), required),
    }
}

/// A patch schema: the patch type's fields, typed like the input's (every one optional).
fn patch_schema<P: Serialize + Default, I: Serialize + Default>() -> Value {
    let input = properties_of(&I::default());
    let props: Map<String, Value> = properties_of(&P::default())
        .into_iter()
        .map(|(k, _)| {
            let mut s = input.get(&k).cloned().unwrap_or_else(|| json!({}));
            if let Value::Object(m) = &mut s {
                m.insert("nullable".into(), Value::Bool(true));
            }
            (k, s)
        })
        .collect();
    object(props, &[])
}

fn meta_properties(soft_delete: bool) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("id".into(), json!({ "type": "string", "format": "uuid" }));
    m.insert(
        "workspace_id".into(),
        json!({ "type": "string", "format": "uuid" }),
    );
    m.insert(
        "created_at".into(),
        json!({ "type": "string", "format": "date-time" }),
    );
    m.insert(
        "updated_at".into(),
        json!({ "type": "string", "format": "date-time" }),
    );
    m.insert(
        "version".into(),
        json!({ "type": "integer", "minimum": 1, "description": "Grows by one on every update; the ETag." }),
    );
    if soft_delete {
        m.insert(
            "deleted_at".into(),
            json!({ "type": "string", "format": "date-time", "nullable": true }),
        );
    }
    m
}

/// A record schema: its input's fields plus the bookkeeping fields.
fn record_schema<I: Serialize + Default>(kind: EntityKind) -> Value {
    let mut props = properties_of(&I::default());
    props.extend(meta_properties(kind.soft_deletes()));
    object(
        props,
        &["id", "workspace_id", "created_at", "updated_at", "version"],
    )
}

fn page(item: &str) -> Value {
    json!({
        "type": "object",
        "required": ["data", "next_cursor"],
        "properties": {
            "data": { "type": "array", "items": { "$ref": format!("#/components/schemas/{item}") } },
            "next_cursor": { "type": "string", "nullable": true, "description": "Pass as `cursor` for the next page; null on the last page." },
        },
    })
}

fn string() -> Value {
    json!({ "type": "string" })
}

fn uuid() -> Value {
    json!({ "type": "string", "format": "uuid" })
}

fn schemas() -> Map<String, Value> {
    let mut s = Map::new();
    let codes: Vec<String> = ErrorKind::ALL.iter().map(|k| k.code()).collect();
    s.insert(
        "FieldError".into(),
        obj(
            json!({
                "field": string(),
                "issue": string(),
                "code": { "type": "string", "pattern": "^E2[0-9]{3}$" },
                "message": string(),
            }),
            &["field", "issue", "code", "message"],
        ),
    );
    s.insert(
        "Error".into(),
        obj(
            json!({
                "error": obj(json!({
                    "code": { "type": "string", "enum": codes },
                    "message": string(),
                    "fields": { "type": "array", "items": { "$ref": "#/components/schemas/FieldError" } },
                    "request_id": string(),
                }), &["code", "message", "fields", "request_id"]),
            }),
            &["error"],
        ),
    );
    s.insert(
        "Status".into(),
        obj(json!({ "status": string() }), &["status"]),
    );
    s.insert("MetricsText".into(), string());
    s.insert(
        "OpenApiDocument".into(),
        json!({ "type": "object", "additionalProperties": true }),
    );

    macro_rules! kind {
        ($name:literal, $kind:expr, $input:ty, $patch:ty) => {
            s.insert(
                concat!($name, "Input").into(),
                object(properties_of(&<$input>::default()), &[]),
            );
            s.insert(
                concat!($name, "Patch").into(),
                patch_schema::<$patch, $input>(),
            );
            s.insert($name.into(), record_schema::<$input>($kind));
            s.insert(concat!($name, "Page").into(), page($name));
        };
    }
    kind!("Company", EntityKind::Company, CompanyInput, CompanyPatch);
    kind!("Contact", EntityKind::Contact, ContactInput, ContactPatch);
    kind!("Deal", EntityKind::Deal, DealInput, DealPatch);
    kind!("Note", EntityKind::Note, NoteInput, NotePatch);
    kind!("Task", EntityKind::Task, TaskInput, TaskPatch);
    kind!("Tag", EntityKind::Tag, TagInput, TagPatch);

    let roles: Vec<&str> = Role::ALL.iter().map(|r| r.as_str()).collect();
    let role = json!({ "type": "string", "enum": roles });
    let mut user = properties_of(&UserInput::default());
    user.extend(meta_properties(false));
    user.insert("role".into(), role.clone());
    user.insert("disabled".into(), json!({ "type": "boolean" }));
    user.insert(
        "last_login_at".into(),
        json!({ "type": "string", "format": "date-time", "nullable": true }),
    );
    s.insert(
        "User".into(),
        object(user, &["id", "email", "role", "disabled", "version"]),
    );
    s.insert("UserPage".into(), page("User"));
    s.insert("UserPatch".into(), patch_schema::<UserPatch, UserInput>());
    let mut create_user = properties_of(&UserInput::default());
    create_user.insert("role".into(), role.clone());
    create_user.insert(
        "password".into(),
        json!({ "type": "string", "description": "The user's first password (optional)." }),
    );
    s.insert("CreateUserRequest".into(), object(create_user, &["email"]));
    s.insert(
        "RoleRequest".into(),
        obj(json!({ "role": role }), &["role"]),
    );
    s.insert(
        "SetPasswordRequest".into(),
        obj(json!({ "password": string() }), &["password"]),
    );

    let config_sample =
        Configuration::defaults(WorkspaceId::from_uuid(uuid::Uuid::nil()), Timestamp::EPOCH);
    let mut config = properties_of(&config_sample);
    config.extend(meta_properties(false));
    s.insert("Configuration".into(), object(config.clone(), &["version"]));
    let patch: Map<String, Value> = config
        .into_iter()
        .filter(|(k, _)| {
            !matches!(
                k.as_str(),
                "id" | "workspace_id" | "created_at" | "updated_at" | "version"
            )
        })
        .collect();
    s.insert("ConfigurationPatch".into(), object(patch, &[]));

    s.insert(
        "Workspace".into(),
        obj(
            json!({
                "id": uuid(), "workspace_id": uuid(), "name": string(),
                "created_at": { "type": "string", "format": "date-time" },
                "updated_at": { "type": "string", "format": "date-time" },
                "version": { "type": "integer" },
            }),
            &["id", "name"],
        ),
    );
    let token_props = json!({
        "access_token": { "type": "string", "description": "HS256 JWT; send as `Authorization: Bearer`." },
        "token_type": { "type": "string", "enum": ["Bearer"] },
        "expires_in": { "type": "integer", "description": "Seconds until the access token expires." },
        "refresh_token": { "type": "string", "description": "Opaque; rotated on every refresh. Also set as an HttpOnly cookie." },
        "session_id": uuid(),
        "user": { "$ref": "#/components/schemas/User" },
        "csrf_token": { "type": "string", "description": "Echo in `X-CSRF-Token` when refreshing or logging out with the cookie." },
    });
    let token_required = [
        "access_token",
        "token_type",
        "expires_in",
        "refresh_token",
        "user",
        "csrf_token",
    ];
    s.insert(
        "TokenResponse".into(),
        obj(token_props.clone(), &token_required),
    );
    let mut signup = token_props;
    signup["workspace"] = json!({ "$ref": "#/components/schemas/Workspace" });
    s.insert("SignupResponse".into(), obj(signup, &token_required));
    s.insert(
        "SignupRequest".into(),
        obj(
            json!({
                "workspace_name": string(), "email": string(), "password": string(),
                "first_name": string(), "last_name": string(),
            }),
            &["workspace_name", "email", "password"],
        ),
    );
    s.insert(
        "LoginRequest".into(),
        obj(
            json!({
                "workspace_id": { "type": "string", "format": "uuid", "description": "Default: the installation's workspace." },
                "email": string(), "password": string(),
            }),
            &["email", "password"],
        ),
    );
    s.insert(
        "RefreshRequest".into(),
        obj(json!({ "refresh_token": string() }), &[]),
    );
    s.insert(
        "PasswordChangeRequest".into(),
        obj(
            json!({ "current_password": string(), "new_password": string() }),
            &["current_password", "new_password"],
        ),
    );
    s.insert(
        "PasswordResetRequest".into(),
        obj(
            json!({ "workspace_id": uuid(), "email": string() }),
            &["email"],
        ),
    );
    s.insert(
        "PasswordResetConfirm".into(),
        obj(
            json!({ "token": string(), "new_password": string() }),
            &["token", "new_password"],
        ),
    );
    s.insert(
        "Session".into(),
        obj(
            json!({
                "id": uuid(),
                "created_at": { "type": "string", "format": "date-time" },
                "last_used_at": { "type": "string", "format": "date-time" },
                "expires_at": { "type": "string", "format": "date-time" },
                "client": obj(json!({
                    "address": { "type": "string", "nullable": true },
                    "user_agent": { "type": "string", "nullable": true },
                }), &[]),
                "current": { "type": "boolean" },
            }),
            &["id", "current"],
        ),
    );
    s.insert(
        "SessionList".into(),
        obj(
            json!({ "data": { "type": "array", "items": { "$ref": "#/components/schemas/Session" } } }),
            &["data"],
        ),
    );
    s.insert(
        "Me".into(),
        obj(
            json!({
                "user": { "$ref": "#/components/schemas/User" },
                "workspace": { "$ref": "#/components/schemas/Workspace" },
                "session_id": uuid(),
            }),
            &["user", "workspace", "session_id"],
        ),
    );
    let list_of = |name: &str| json!({ "type": "array", "items": { "$ref": format!("#/components/schemas/{name}") } });
    s.insert(
        "SearchResults".into(),
        obj(
            json!({ "companies": list_of("Company"), "contacts": list_of("Contact"), "deals": list_of("Deal") }),
            &["companies", "contacts", "deals"],
        ),
    );
    s.insert(
        "ActivityItem".into(),
        obj(
            json!({
                "at": { "type": "string", "format": "date-time" },
                "actor_id": { "type": "string", "format": "uuid", "nullable": true },
                "entity": string(), "record_id": uuid(), "label": string(), "audit_id": uuid(),
            }),
            &["at", "entity", "record_id", "audit_id"],
        ),
    );
    s.insert("ActivityPage".into(), page("ActivityItem"));
    s.insert(
        "AuditEntry".into(),
        obj(
            json!({
                "id": uuid(), "workspace_id": uuid(),
                "at": { "type": "string", "format": "date-time" },
                "actor_id": { "type": "string", "format": "uuid", "nullable": true },
                "entity": string(), "record_id": uuid(), "label": string(), "action": string(),
                "changes": { "type": "array", "items": obj(json!({
                    "field": string(), "before": {}, "after": {},
                }), &["field"]) },
            }),
            &["id", "at", "entity", "record_id", "action", "changes"],
        ),
    );
    s.insert("AuditPage".into(), page("AuditEntry"));
    s.insert(
        "ChangeItem".into(),
        obj(
            json!({
                "cursor": { "type": "string", "description": "Read on from this entry with `since=`." },
                "entity": { "type": "string", "enum": ["company", "contact", "deal", "note", "task", "tag"] },
                "id": uuid(),
                "op": { "type": "string", "enum": ["upsert", "delete"] },
                "version": { "type": "integer", "minimum": 1 },
                "at": { "type": "string", "format": "date-time" },
                "actor_id": { "type": "string", "format": "uuid", "nullable": true },
                "record": { "type": "object", "nullable": true, "description": "For an upsert, the record as its GET returns it; null for a delete." },
            }),
            &["cursor", "entity", "id", "op", "version", "record"],
        ),
    );
    s.insert(
        "RecentList".into(),
        json!({
            "type": "object",
            "required": ["data"],
            "properties": {
                "data": { "type": "array", "items": { "type": "object" }, "description": "Records as their GET returns them, most recently viewed first." },
            },
        }),
    );
    s.insert(
        "ChangePage".into(),
        json!({
            "type": "object",
            "required": ["data", "next_cursor", "has_more"],
            "properties": {
                "data": { "type": "array", "items": { "$ref": "#/components/schemas/ChangeItem" } },
                "next_cursor": { "type": "string", "description": "Always present: pass as `since` to read on, now or later." },
                "has_more": { "type": "boolean", "description": "More entries were already waiting: read on at once." },
            },
        }),
    );
    let count = || json!({ "type": "integer", "minimum": 0 });
    let date = || json!({ "type": "string", "format": "date" });
    s.insert(
        "Dashboard".into(),
        obj(
            json!({
                "today": date(),
                "week_end": date(),
                "deals_by_stage": { "type": "array", "description": "Configured stages in pipeline order, then other stages holding deals; archived deals left out.", "items": obj(json!({
                    "stage": string(), "label": string(), "closed": { "type": "boolean" },
                    "count": count(), "amount": { "type": "integer", "description": "Sum of amounts, minor units." },
                }), &["stage", "label", "closed", "count", "amount"]) },
                "tasks": obj(json!({
                    "overdue": count(), "today": count(),
                    "this_week": { "type": "integer", "minimum": 0, "description": "Due after today, up to Saturday." },
                    "open": count(),
                    "next": { "type": "array", "items": { "$ref": "#/components/schemas/Task" } },
                }), &["overdue", "today", "this_week", "open", "next"]),
                "activity": { "type": "array", "items": { "$ref": "#/components/schemas/ActivityItem" } },
                "hot_contacts": { "type": "array", "items": { "$ref": "#/components/schemas/Contact" } },
                "counts": obj(json!({
                    "companies": count(), "contacts": count(), "deals": count(),
                    "notes": count(), "tasks": count(), "tags": count(),
                }), &["companies", "contacts", "deals", "notes", "tasks", "tags"]),
            }),
            &["today", "week_end", "deals_by_stage", "tasks", "activity", "hot_contacts", "counts"],
        ),
    );
    s.insert(
        "MergeRequest".into(),
        obj(json!({ "loser_id": uuid() }), &["loser_id"]),
    );
    s.insert(
        "MoveRequest".into(),
        obj(
            json!({ "stage": string(), "position": { "type": "integer", "minimum": 0 } }),
            &["stage"],
        ),
    );
    s.insert(
        "CompleteRequest".into(),
        obj(
            json!({ "completed": { "type": "boolean" } }),
            &["completed"],
        ),
    );
    s
}

fn field_schema(ty: FieldType) -> Value {
    match ty {
        FieldType::Bool => json!({ "type": "boolean" }),
        FieldType::Int => json!({ "type": "integer" }),
        FieldType::Text => json!({ "type": "string" }),
        FieldType::Id => json!({ "type": "string", "format": "uuid" }),
        FieldType::Time => json!({ "type": "string", "format": "date-time" }),
        FieldType::Date => json!({ "type": "string", "format": "date" }),
    }
}

fn query_param(name: &str, description: &str, schema: Value) -> Value {
    json!({ "name": name, "in": "query", "required": false, "description": description, "schema": schema })
}

fn list_params(kind: EntityKind) -> Vec<Value> {
    let sorts: Vec<String> = kind
        .fields()
        .iter()
        .filter(|f| f.sort)
        .flat_map(|f| [f.name.to_string(), format!("-{}", f.name)])
        .collect();
    let mut out = vec![
        query_param(
            "q",
            "Full-text query: every word must start a word of the record.",
            string(),
        ),
        query_param(
            "sort",
            "Sort field, `-field` for descending.",
            json!({ "type": "string", "enum": sorts }),
        ),
        query_param(
            "limit",
            "Page size (1..=100, default 25).",
            json!({ "type": "integer", "minimum": 1, "maximum": 100 }),
        ),
        query_param("cursor", "`next_cursor` of the previous page.", string()),
        query_param(
            "ids",
            "Batch read: these records (comma-separated ids, at most 100) instead of a page, in the order asked; missing or invisible ones are left out. No other parameter may be given with it.",
            string(),
        ),
        query_param(
            "deleted",
            "Soft-deleted records: `exclude` (default), `only` (the trash), `include`.",
            json!({ "type": "string", "enum": ["exclude", "only", "include"] }),
        ),
    ];
    for f in kind.fields().iter().filter(|f| f.filter) {
        out.push(query_param(
            f.name,
            "Equals (comma-separated values: one of).",
            field_schema(f.ty),
        ));
        if !f.multi {
            for (suffix, what) in [("_gte", "At least"), ("_lte", "At most")] {
                out.push(query_param(
                    &format!("{}{suffix}", f.name),
                    what,
                    field_schema(f.ty),
                ));
            }
        }
    }
    out
}

fn header_param(name: &str, required: bool, description: &str) -> Value {
    json!({ "name": name, "in": "header", "required": required, "description": description, "schema": string() })
}

fn operation(def: &RouteDef) -> Value {
    let mut params: Vec<Value> = def
        .path
        .split('/')
        .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .map(|name| json!({ "name": name, "in": "path", "required": true, "schema": uuid() }))
        .collect();
    match &def.query {
        QueryDoc::None => {}
        QueryDoc::List(kind) => params.extend(list_params(*kind)),
        QueryDoc::Params(list) => {
            params.extend(list.iter().map(|(n, d)| query_param(n, d, string())));
        }
    }
    match def.precondition {
        Precondition::None => {}
        Precondition::Required => params.push(header_param(
            "If-Match",
            true,
            "The ETag (version) the change is based on; `428` without it, `412` when stale.",
        )),
        Precondition::Optional => params.push(header_param(
            "If-Match",
            false,
            "When given, the change happens only at this ETag (version); `412` otherwise.",
        )),
    }
    if def.etag && def.method == axum::http::Method::GET {
        params.push(header_param(
            "If-None-Match",
            false,
            "ETags the client has; `304` when the record (or the answer) is still at one of them.",
        ));
    }
    if matches!(def.access, Access::Refresh | Access::BearerOrRefresh) {
        params.push(header_param(
            "X-CSRF-Token",
            false,
            "Required when the refresh token comes from the cookie: the `csrf_token` issued with it.",
        ));
    }

    let mut responses = Map::new();
    let etag_header = json!({ "ETag": { "description": "The record version; for lists and other collections a weak digest of the body.", "schema": string() } });
    let mut ok = json!({ "description": "Success." });
    if let Some(schema) = &def.ok_schema {
        let media = if schema == "MetricsText" {
            "text/plain"
        } else {
            "application/json"
        };
        ok["content"] =
            json!({ media: { "schema": { "$ref": format!("#/components/schemas/{schema}") } } });
    }
    if def.etag {
        ok["headers"] = etag_header.clone();
    }
    responses.insert(def.ok_status.to_string(), ok);
    if def.etag && def.method == axum::http::Method::GET {
        responses.insert(
            "304".into(),
            json!({ "description": "Not modified (If-None-Match).", "headers": etag_header }),
        );
    }
    responses.insert(
        "default".into(),
        json!({ "$ref": "#/components/responses/Error" }),
    );

    let mut o = json!({
        "operationId": def.operation_id,
        "summary": def.summary,
        "tags": [def.tag],
        "parameters": params,
        "responses": responses,
    });
    if let Some((schema, required)) = &def.body {
        o["requestBody"] = json!({
            "required": required,
            "content": { "application/json": { "schema": { "$ref": format!("#/components/schemas/{schema}") } } },
        });
    }
    o["security"] = match def.access {
        Access::Public | Access::Refresh => json!([]),
        Access::Bearer => json!([{ "bearerAuth": [] }]),
        Access::BearerOrRefresh => json!([{}, { "bearerAuth": [] }]),
    };
    o
}

fn build(table: &[RouteDef]) -> Value {
    let mut paths = Map::new();
    for def in table {
        let entry = paths
            .entry(def.path.clone())
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(m) = entry {
            m.insert(def.method.as_str().to_ascii_lowercase(), operation(def));
        }
    }
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "crm",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "The crm REST API. Paths are relative to where the host mounts the router. Every error is `{\"error\": {\"code\", \"message\", \"fields\", \"request_id\"}}`; the codes are listed in the error dictionary.",
        },
        "paths": paths,
        "components": {
            "schemas": schemas(),
            "securitySchemes": {
                "bearerAuth": { "type": "http", "scheme": "bearer", "bearerFormat": "JWT" },
            },
            "responses": {
                "Error": {
                    "description": "A coded error (status from the error kind; 412 for a stale If-Match, 428 when it is missing, 429 with Retry-After when rate limited).",
                    "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } },
                },
            },
        },
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn inputs_are_described_from_their_types() {
        let doc = super::document();
        let contact = &doc["components"]["schemas"]["ContactInput"]["properties"];
        assert_eq!(contact["first_name"]["type"], "string");
        assert_eq!(contact["has_newsletter"]["type"], "boolean");
        assert_eq!(contact["emails"]["type"], "array");
        let list = &doc["paths"]["/contacts"]["get"]["parameters"];
        let names: Vec<&str> = list
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|p| p["name"].as_str())
            .collect();
        // Filters come from the kind's field specs, ranges only for single-valued fields.
        for n in ["q", "sort", "limit", "cursor", "deleted", "status", "tags"] {
            assert!(names.contains(&n), "{n}: {names:?}");
        }
        assert!(names.contains(&"last_seen_gte") && names.contains(&"last_seen_lte"));
        assert!(names.contains(&"company_id_gte"));
        assert!(!names.contains(&"tags_gte"));
        let sorts = &list[1]["schema"]["enum"];
        assert!(sorts.as_array().unwrap().iter().any(|s| s == "-last_seen"));
        assert_eq!(
            doc["paths"]["/contacts/{id}"]["patch"]["parameters"][1]["name"],
            "If-Match"
        );
    }
}
