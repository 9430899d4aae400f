//! The OpenAPI 3.0 document of the router, generated from the route table
//! (`routes`) and from the core's declarations: each kind's record, input and patch schemas
//! come from its entity declaration ([`crm_core::model::Declaration`]: types, lengths,
//! formats, patterns, ranges, enums, `required`, `additionalProperties: false`), list
//! parameters from its filterable and sortable fields ([`EntityKind::fields`], with the
//! value patterns [`FieldSpec::parse_value`] accepts), the other operations' query
//! parameters from the route table's `ParamType`s (integer ranges, ids, instants, dates,
//! kinds, audit actions, security event types; `required` where the handler insists), roles
//! from [`Role::ALL`], error and field-issue codes from [`ErrorKind::ALL`] and
//! [`FieldIssue::ALL`]. A nullable enum lists `null` among its values (OpenAPI 3.0.3), and
//! e-mail addresses are `idn-email` (their local parts may be internationalized).
//!
//! Paths are relative to where the host mounts the router.

use std::sync::OnceLock;

use crm_core::audit::AuditAction;
use crm_core::feed::FEED_KINDS;
use crm_core::model::{EntityKind, Role};
use crm_core::query::{DEFAULT_LIMIT, FieldSpec, FieldType, MAX_LIMIT};
use crm_core::security::SecurityEventType;
use crm_core::validate::limits;
use crm_core::{ErrorKind, FieldIssue};
use serde_json::{Map, Value, json};

use crate::routes::{Access, ParamType, Precondition, QueryDoc, RouteDef, table};

/// The document (built once).
pub fn document() -> &'static Value {
    static DOC: OnceLock<Value> = OnceLock::new();
    DOC.get_or_init(|| build(&table()))
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

/// A request body: like [`obj`], refusing unknown fields (every body type of the adapter and
/// every input and patch of the core is `deny_unknown_fields`).
fn body(props: Value, required: &[&str]) -> Value {
    let mut o = obj(props, required);
    o["additionalProperties"] = Value::Bool(false);
    o
}

/// The schema of a declared field of `kind` (as a create input takes it).
fn field(kind: EntityKind, name: &str) -> Value {
    kind.declaration()
        .field(name)
        .map_or_else(string, |f| f.input_schema())
}

/// The kinds whose records the API serves, schemas from their declarations.
fn declared_kinds() -> impl Iterator<Item = EntityKind> {
    EntityKind::RECORDS.into_iter().chain([
        EntityKind::User,
        EntityKind::Configuration,
        EntityKind::Workspace,
    ])
}

/// A kind's record, input, patch and page schemas, from its declaration
/// ([`crm_core::model::Declaration`]).
fn declared(s: &mut Map<String, Value>, kind: EntityKind) {
    let d = kind.declaration();
    s.insert(d.name.into(), d.record_schema());
    if let (Some(name), Some(input)) = (d.input, d.input_schema()) {
        s.insert(name.into(), input);
    }
    if let (Some(name), Some(patch)) = (d.patch, d.patch_schema()) {
        s.insert(name.into(), patch);
    }
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
    let issues: Vec<Value> = FieldIssue::ALL
        .iter()
        .filter_map(|i| serde_json::to_value(i).ok())
        .collect();
    let issue_codes: Vec<&str> = FieldIssue::ALL.iter().map(|i| i.code()).collect();
    s.insert(
        "FieldError".into(),
        obj(
            json!({
                "field": { "type": "string", "description": "Path of the field: `name`, `emails[1].email`; a query parameter or header name for a bad query or header." },
                "issue": { "type": "string", "enum": issues },
                "code": { "type": "string", "enum": issue_codes },
                "message": { "type": "string", "description": "A short explanation; never the submitted value." },
            }),
            &["field", "issue", "code", "message"],
        ),
    );
    s.insert(
        "Error".into(),
        obj(
            json!({
                "error": obj(json!({
                    "code": { "type": "string", "enum": codes, "description": "See the error dictionary (docs/errors.md)." },
                    "message": { "type": "string", "description": "User-facing; never internals." },
                    "fields": { "type": "array", "items": { "$ref": "#/components/schemas/FieldError" }, "description": "Every failing field (validation errors); empty otherwise." },
                    "request_id": { "type": "string", "description": "Also in the `X-Request-Id` header and the server log." },
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

    for kind in declared_kinds() {
        declared(&mut s, kind);
    }
    for name in ["Company", "Contact", "Deal", "Note", "Task", "Tag", "User"] {
        s.insert(format!("{name}Page"), page(name));
    }
    // `UserInput` itself is no body: `POST /users` takes it with the first password.
    let mut create_user = s.remove("UserInput").unwrap_or_else(|| json!({}));
    create_user["properties"]["password"] = json!({ "type": "string", "nullable": true, "description": "The user's first password (optional; null or left out: none)." });
    create_user["required"] = json!(["email"]);
    s.insert("CreateUserRequest".into(), create_user);
    let roles: Vec<&str> = Role::ALL.iter().map(|r| r.as_str()).collect();
    let role = json!({ "type": "string", "enum": roles });
    s.insert(
        "RoleRequest".into(),
        body(json!({ "role": role }), &["role"]),
    );
    s.insert(
        "SetPasswordRequest".into(),
        body(json!({ "password": string() }), &["password"]),
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
        body(
            json!({
                "workspace_name": field(EntityKind::Workspace, "name"),
                "email": field(EntityKind::User, "email"),
                "password": string(),
                "first_name": field(EntityKind::User, "first_name"),
                "last_name": field(EntityKind::User, "last_name"),
            }),
            &["workspace_name", "email", "password"],
        ),
    );
    s.insert(
        "LoginRequest".into(),
        body(
            json!({
                "workspace_id": { "type": "string", "format": "uuid", "nullable": true, "description": "Null or left out: the installation's workspace." },
                "email": string(), "password": string(),
            }),
            &["email", "password"],
        ),
    );
    s.insert(
        "RefreshRequest".into(),
        body(
            json!({ "refresh_token": { "type": "string", "nullable": true, "description": "Null or left out: the refresh cookie (with `X-CSRF-Token`)." } }),
            &[],
        ),
    );
    s.insert(
        "PasswordChangeRequest".into(),
        body(
            json!({ "current_password": string(), "new_password": string() }),
            &["current_password", "new_password"],
        ),
    );
    s.insert(
        "PasswordResetRequest".into(),
        body(
            json!({
                "workspace_id": { "type": "string", "format": "uuid", "nullable": true, "description": "Null or left out: the installation's workspace." },
                "email": string(),
            }),
            &["email"],
        ),
    );
    s.insert(
        "PasswordResetConfirm".into(),
        body(
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
    let audit_list =
        json!({ "type": "array", "items": { "$ref": "#/components/schemas/AuditEntry" } });
    let header = obj(
        json!({
            "format": string(),
            "generated_at": { "type": "string", "format": "date-time" },
            "generated_by": uuid(), "workspace_id": uuid(),
            "workspace_name": { "type": "string", "nullable": true },
            "subject": { "type": "string", "enum": ["contact", "user"] },
            "subject_id": uuid(),
            "retention": obj(json!({
                "trash_days": { "type": "integer" },
                "audit_days": { "type": "integer", "nullable": true, "description": "null: audit entries are kept forever" },
                "access_log_days": { "type": "integer" },
                "security_event_days": { "type": "integer" },
                "session_days": { "type": "integer" },
                "client_details": { "type": "string", "enum": ["stored", "truncated", "none"] },
            }), &["trash_days", "audit_days", "access_log_days", "security_event_days", "session_days", "client_details"]),
        }),
        &[
            "format",
            "generated_at",
            "generated_by",
            "workspace_id",
            "subject",
            "subject_id",
            "retention",
        ],
    );
    let list_of = |name: &str| json!({ "type": "array", "items": { "$ref": format!("#/components/schemas/{name}") } });
    s.insert(
        "ContactExport".into(),
        obj(
            json!({
                "header": header.clone(),
                "contact": { "$ref": "#/components/schemas/Contact" },
                "notes": list_of("Note"), "tasks": list_of("Task"), "deals": list_of("Deal"),
                "company": { "allOf": [{ "$ref": "#/components/schemas/Company" }], "nullable": true },
                "audit": audit_list.clone(),
                "access_log": { "description": "Reads of the contact recorded in the access log; null: none is kept." },
                "consent_history": { "type": "array", "items": obj(json!({
                    "at": { "type": "string", "format": "date-time" },
                    "actor_id": { "type": "string", "format": "uuid", "nullable": true },
                    "before": {}, "after": {},
                }), &["at"]) },
            }),
            &["header", "contact", "notes", "tasks", "deals", "audit", "consent_history"],
        ),
    );
    s.insert(
        "UserExport".into(),
        obj(
            json!({
                "header": header,
                "profile": { "$ref": "#/components/schemas/User" },
                "sessions": { "type": "array", "items": obj(json!({
                    "id": uuid(),
                    "address": { "type": "string", "nullable": true },
                    "user_agent": { "type": "string", "nullable": true },
                    "created_at": { "type": "string", "format": "date-time" },
                    "last_used_at": { "type": "string", "format": "date-time" },
                    "expires_at": { "type": "string", "format": "date-time" },
                    "revoked_at": { "type": "string", "format": "date-time", "nullable": true },
                    "revoke_reason": { "type": "string", "nullable": true },
                }), &["id", "created_at", "last_used_at", "expires_at"]) },
                "audit_own_actions": audit_list.clone(),
                "audit_about": audit_list,
                "security_events": { "description": "Security events about the user; null: none are kept." },
            }),
            &["header", "profile", "sessions", "audit_own_actions", "audit_about"],
        ),
    );
    s.insert(
        "ErasureReport".into(),
        obj(
            json!({
                "entity": { "type": "string", "enum": ["contact", "user"] },
                "id": uuid(),
                "erased_at": { "type": "string", "format": "date-time" },
                "erased_by": { "type": "string", "format": "uuid", "nullable": true },
                "removed": { "type": "array", "items": uuid() },
                "audit_entries_redacted": { "type": "integer", "minimum": 0 },
                "access_log_entries": { "type": "integer", "minimum": 0 },
                "already_erased": { "type": "boolean" },
            }),
            &[
                "entity",
                "id",
                "erased_at",
                "removed",
                "audit_entries_redacted",
                "access_log_entries",
                "already_erased",
            ],
        ),
    );
    let types: Vec<&str> = crm_core::security::SecurityEventType::ALL
        .iter()
        .map(|t| t.as_str())
        .collect();
    s.insert(
        "SecurityEvent".into(),
        obj(
            json!({
                "id": uuid(), "workspace_id": uuid(),
                "at": { "type": "string", "format": "date-time" },
                "type": { "type": "string", "enum": types },
                "user_id": { "type": "string", "format": "uuid", "nullable": true },
                "actor_id": { "type": "string", "format": "uuid", "nullable": true },
                "address": { "type": "string", "nullable": true },
                "email": { "type": "string", "nullable": true },
                "detail": { "type": "object", "description": "Non-secret facts: reason codes, rule, counts." },
            }),
            &["id", "at", "type", "detail"],
        ),
    );
    s.insert("SecurityEventPage".into(), page("SecurityEvent"));
    s.insert(
        "AccessEntry".into(),
        obj(
            json!({
                "id": uuid(), "workspace_id": uuid(),
                "at": { "type": "string", "format": "date-time" },
                "user_id": uuid(), "entity": string(), "record_id": uuid(), "route": string(),
                "address": { "type": "string", "nullable": true },
            }),
            &["id", "at", "user_id", "entity", "record_id", "route"],
        ),
    );
    s.insert("AccessLogPage".into(), page("AccessEntry"));
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
        "ConsentRequest".into(),
        body(
            json!({
                "purpose": { "type": "string", "pattern": "^[a-z0-9_.-]{1,22}$", "description": "What for, e.g. `newsletter` (Atomic CRM's has_newsletter)." },
                "status": { "type": "string", "enum": ["granted", "withdrawn"] },
                "at": { "type": "string", "format": "date-time", "description": "When (default: now; not in the future)." },
                "source": { "type": "string", "maxLength": 200 },
                "note": { "type": "string", "maxLength": 200 },
            }),
            &["purpose", "status"],
        ),
    );
    s.insert(
        "MergeRequest".into(),
        body(json!({ "loser_id": uuid() }), &["loser_id"]),
    );
    s.insert(
        "MoveRequest".into(),
        body(
            json!({
                "stage": { "type": "string", "description": "One of the configuration's deal stages." },
                "position": { "type": "integer", "minimum": 0, "description": "0 = top; past the end = bottom." },
            }),
            &["stage"],
        ),
    );
    s.insert(
        "CompleteRequest".into(),
        body(
            json!({ "completed": { "type": "boolean" } }),
            &["completed"],
        ),
    );
    s
}

/// The pattern of one filter value, as [`FieldSpec::parse_value`] reads it: `null` (no
/// value) or a value of the field's type, without commas for texts (a comma separates the
/// values of a "one of" filter). Dates and instants keep to years 1970-2999 and days 01-28,
/// a subset the parser always accepts, so a value that matches is never refused.
fn value_pattern(ty: FieldType) -> &'static str {
    match ty {
        FieldType::Bool => "true|false|null",
        FieldType::Int => "-?[0-9]{1,18}|null",
        FieldType::Text => "[^,]{0,200}",
        FieldType::Id => {
            "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|null"
        }
        FieldType::Date => "(19[7-9][0-9]|2[0-9]{3})-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])|null",
        FieldType::Purpose => "[a-z0-9_.-]{1,22}",
        FieldType::Time => {
            "(19[7-9][0-9]|2[0-9]{3})-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\\.[0-9]{1,6})?Z|null"
        }
    }
}

/// An equality filter: one value or, comma-separated, up to [`MAX_LIMIT`] ("one of"; the
/// pattern does not count them).
fn eq_schema(spec: &FieldSpec) -> Value {
    let v = value_pattern(spec.ty);
    json!({
        "type": "string",
        "pattern": format!("^({v})(,({v}))*$"),
    })
}

/// A range bound: one value (a text of at most 200 characters, commas included).
fn bound_schema(spec: &FieldSpec) -> Value {
    match spec.ty {
        FieldType::Text => json!({ "type": "string", "maxLength": limits::SHORT_TEXT }),
        ty => json!({ "type": "string", "pattern": format!("^({})$", value_pattern(ty)) }),
    }
}

fn query_param(name: &str, description: &str, schema: Value) -> Value {
    json!({ "name": name, "in": "query", "required": false, "description": description, "schema": schema })
}

/// The schema of a named query parameter: what its handler accepts.
fn param_schema(t: ParamType) -> Value {
    let exactly = |ty| format!("^({})$", value_pattern(ty).trim_end_matches("|null"));
    let nouns: Vec<&str> = FEED_KINDS.iter().map(|k| k.noun()).collect();
    match t {
        ParamType::Text => string(),
        ParamType::Int { min, max, default } => {
            json!({ "type": "integer", "minimum": min, "maximum": max, "default": default })
        }
        ParamType::Id => {
            json!({ "type": "string", "format": "uuid", "pattern": exactly(FieldType::Id) })
        }
        ParamType::Time => {
            json!({ "type": "string", "format": "date-time", "pattern": exactly(FieldType::Time) })
        }
        ParamType::Date => {
            json!({ "type": "string", "format": "date", "pattern": exactly(FieldType::Date) })
        }
        ParamType::Kind => json!({ "type": "string", "enum": nouns }),
        ParamType::Kinds => comma_list(&nouns),
        ParamType::EntityKinds => comma_list(&wire_names(&EntityKind::ALL)),
        ParamType::AuditActions => comma_list(&wire_names(&AuditAction::ALL)),
        ParamType::EventType => {
            let names: Vec<&str> = SecurityEventType::ALL.iter().map(|t| t.as_str()).collect();
            json!({ "type": "string", "enum": names })
        }
    }
}

/// A comma-separated list of these names (at least one).
fn comma_list<S: AsRef<str>>(names: &[S]) -> Value {
    let one: Vec<&str> = names.iter().map(AsRef::as_ref).collect();
    let one = one.join("|");
    json!({ "type": "string", "pattern": format!("^({one})(,({one}))*$") })
}

/// The names values have on the wire.
fn wire_names<T: serde::Serialize>(values: &[T]) -> Vec<String> {
    values
        .iter()
        .filter_map(|v| serde_json::to_value(v).ok()?.as_str().map(str::to_owned))
        .collect()
}

/// The query parameters of a list, as [`ListParams::to_query`] and the adapter check them.
///
/// [`ListParams::to_query`]: crm_core::query::ListParams::to_query
fn list_params(kind: EntityKind) -> Vec<Value> {
    let sorts: Vec<String> = kind
        .fields()
        .iter()
        .filter(|f| f.sort)
        .flat_map(|f| [f.name.to_string(), format!("-{}", f.name)])
        .collect();
    let uuid = value_pattern(FieldType::Id).trim_end_matches("|null");
    let mut out = Vec::new();
    // Only the searchable kinds take a full-text query (others refuse one with words).
    if kind.searchable() {
        out.push(query_param(
            "q",
            "Full-text query: every word must start a word of the record (or, from three characters, occur inside one of its email addresses or phone numbers).",
            json!({ "type": "string", "maxLength": 200 }),
        ));
    }
    out.extend([
        query_param(
            "sort",
            "Sort field, `-field` for descending.",
            json!({ "type": "string", "enum": sorts }),
        ),
        query_param(
            "limit",
            &format!("Page size (1..={MAX_LIMIT}, default {DEFAULT_LIMIT})."),
            json!({ "type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT }),
        ),
        query_param(
            "cursor",
            "`next_cursor` of the previous page, with the same sort (any other value is `400` `E2002`).",
            json!({ "type": "string", "maxLength": 4096 }),
        ),
        query_param(
            "ids",
            &format!("Batch read: these records (comma-separated ids, at most {MAX_LIMIT}) instead of a page, in the order asked; missing or invisible ones are left out. No other parameter may be given with it."),
            json!({
                "type": "string",
                "pattern": format!("^{uuid}(,{uuid})*$"),
            }),
        ),
    ]);
    if kind.soft_deletes() {
        out.push(query_param(
            "deleted",
            "Soft-deleted records: `exclude` (default), `only` (the trash), `include`; the trash is for those who may restore.",
            json!({ "type": "string", "enum": ["exclude", "only", "include"] }),
        ));
    }
    for f in kind.fields().iter().filter(|f| f.filter) {
        let what = if f.multi {
            "Contains this value (comma-separated, at most 100: one of them); `null` for none."
        } else {
            "Equals this value (comma-separated, at most 100: one of them); `null` for none."
        };
        out.push(query_param(f.name, what, eq_schema(f)));
        if !f.multi {
            for (suffix, what) in [("_gte", "At least"), ("_lte", "At most")] {
                out.push(query_param(
                    &format!("{}{suffix}", f.name),
                    what,
                    bound_schema(f),
                ));
            }
        }
    }
    out
}

fn header_param(name: &str, required: bool, description: &str) -> Value {
    json!({ "name": name, "in": "header", "required": required, "description": description, "schema": string() })
}

/// `If-Match`: `*`, one entity tag (strong `"3"`; a weak one never matches), or a bare
/// version number.
fn if_match_param(required: bool, description: &str) -> Value {
    json!({
        "name": "If-Match", "in": "header", "required": required, "description": description,
        "schema": { "type": "string", "pattern": "^(\\*|(W/)?\"[!#-~]*\"|[0-9]+)$" },
    })
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
            params.extend(list.iter().map(|p| {
                let mut q = query_param(p.name, p.description, param_schema(p.ty));
                q["required"] = json!(p.required);
                q
            }));
        }
    }
    match def.precondition {
        Precondition::None => {}
        Precondition::Required => params.push(if_match_param(
            true,
            "The ETag (version) the change is based on, or `*`; `428` without it (RFC 6585: this server requires conditional changes), `412` when it names another version, `400` when it is no entity tag.",
        )),
        Precondition::Optional => params.push(if_match_param(
            false,
            "When given, the change happens only at this ETag (version), or `*`; `412` otherwise, `400` when it is no entity tag.",
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
            "description": "The crm REST API. Paths are relative to where the host mounts the router (`servers` names it). Every error is `{\"error\": {\"code\", \"message\", \"fields\", \"request_id\"}}`; the codes are listed in the error dictionary.\n\nChanges to an existing record are conditional requests (RFC 9110, section 13.1.1): they carry `If-Match` with the record's ETag (its version), or `*`. A change sent without it is refused with `428 Precondition Required` (RFC 6585, section 3: the server requires the request to be conditional, so that no update is ever based on a version the client never saw), not with `400`; one whose tag no longer matches is refused with `412 Precondition Failed`. They are coded `E2004` (field `If-Match`) and `E5002` respectively.\n\nEvery answer carries `RateLimit-Policy` and `RateLimit` (draft-ietf-httpapi-ratelimit-headers-10), e.g. `\"user\";q=100;w=60` and `\"user\";r=97;t=2`; a refusal is `429` with `Retry-After`.",
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
        // Full-text queries only where the kind is searchable, the trash only where it
        // soft deletes.
        let names_of = |path: &str| -> Vec<String> {
            doc["paths"][path]["get"]["parameters"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|p| p["name"].as_str().map(str::to_owned))
                .collect()
        };
        let tags = names_of("/tags");
        assert!(!tags.iter().any(|n| n == "q") && tags.iter().any(|n| n == "deleted"));
        let users = names_of("/users");
        assert!(
            !users.iter().any(|n| n == "q" || n == "deleted"),
            "{users:?}"
        );
    }

    use crm_core::model::EntityKind;
    use crm_core::query::{FieldSpec, FieldType};
    use crm_core::validate::{is_email, is_phone, is_url};
    use regex::Regex;
    use serde_json::Value;

    /// Every declared field is in the served document's record, input and patch schemas (as
    /// its declaration describes it, limits included: `crm_core::model::schema` checks the
    /// limits against the rules), and nothing undeclared is.
    #[test]
    fn every_declared_field_is_in_the_document() {
        let schemas = &super::document()["components"]["schemas"];
        for kind in super::declared_kinds() {
            let d = kind.declaration();
            let record = &schemas[d.name];
            assert_eq!(record, &d.record_schema(), "{kind}");
            let bookkeeping = 5 + usize::from(d.soft_delete);
            assert_eq!(
                record["properties"].as_object().unwrap().len(),
                d.fields.len() + bookkeeping,
                "{kind}"
            );
            for f in d.fields {
                assert_eq!(
                    record["properties"][f.name],
                    f.record_schema(),
                    "{kind} {}",
                    f.name
                );
            }
            if let (Some(name), Some(input)) = (d.input, d.input_schema()) {
                // `POST /users` takes the user input with a password.
                let served = if kind == EntityKind::User {
                    &schemas["CreateUserRequest"]
                } else {
                    &schemas[name]
                };
                for (field, schema) in input["properties"].as_object().unwrap() {
                    assert_eq!(&served["properties"][field], schema, "{kind} input {field}");
                }
                assert_eq!(served["additionalProperties"], false, "{kind}");
            }
            if let (Some(name), Some(patch)) = (d.patch, d.patch_schema()) {
                assert_eq!(schemas[name], patch, "{kind}");
                assert_eq!(schemas[name]["additionalProperties"], false, "{kind}");
            }
        }
        // Spot checks of what the declarations say.
        let contact = &schemas["ContactInput"];
        assert_eq!(
            contact["required"],
            serde_json::json!(["first_name", "last_name"])
        );
        assert_eq!(contact["properties"]["first_name"]["maxLength"], 200);
        assert_eq!(contact["properties"]["emails"]["maxItems"], 50);
        let email = &contact["properties"]["emails"]["items"];
        assert_eq!(email["properties"]["email"]["format"], "idn-email");
        assert_eq!(
            email["properties"]["type"]["enum"],
            serde_json::json!(["Work", "Home", "Other"])
        );
        assert_eq!(email["additionalProperties"], false);
        assert_eq!(contact["properties"]["linkedin_url"]["format"], "uri");
        assert_eq!(contact["properties"]["linkedin_url"]["nullable"], true);
        let deal = &schemas["DealInput"]["properties"];
        assert_eq!(deal["amount"]["minimum"], 0);
        assert_eq!(deal["amount"]["maximum"], 1_000_000_000_000_000_i64);
        assert_eq!(deal["expected_closing_date"]["format"], "date");
        assert_eq!(
            schemas["CompanyInput"]["properties"]["size"]["enum"],
            serde_json::json!([1, 10, 50, 250, 500, null])
        );
        assert_eq!(
            schemas["Task"]["properties"]["priority"]["enum"],
            serde_json::json!(["low", "medium", "high", "urgent", null])
        );
        assert_eq!(
            schemas["User"]["properties"]["role"]["enum"],
            serde_json::json!(["admin", "manager", "sales", "read_only"])
        );
        assert_eq!(schemas["Contact"]["properties"]["id"]["format"], "uuid");
        assert_eq!(
            schemas["Contact"]["properties"]["deleted_at"]["nullable"],
            true
        );
        assert_eq!(
            schemas["TagPatch"]["properties"]["color"]["pattern"],
            "^#[0-9A-Fa-f]{6}$"
        );
    }

    fn walk<'a>(v: &'a Value, out: &mut Vec<(&'a str, &'a Value)>) {
        match v {
            Value::Object(m) => {
                for (k, v) in m {
                    out.push((k, v));
                    walk(v, out);
                }
            }
            Value::Array(items) => items.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }

    #[test]
    fn every_reference_resolves_and_every_pattern_compiles() {
        let doc = super::document();
        let mut all = Vec::new();
        walk(doc, &mut all);
        for (key, value) in all {
            if key == "$ref" {
                let name = value.as_str().unwrap().trim_start_matches("#/components/");
                let (section, name) = name.split_once('/').unwrap();
                assert!(doc["components"][section][name].is_object(), "{name}");
            }
            if key == "pattern" {
                Regex::new(value.as_str().unwrap()).unwrap();
            }
        }
    }

    fn matches(pattern: &str, value: &str) -> bool {
        Regex::new(pattern).unwrap().is_match(value)
    }

    /// The schema's patterns accept a subset of what the validator accepts: a value that
    /// matches is never refused.
    #[test]
    fn what_the_patterns_accept_the_validator_accepts() {
        use crm_core::model::patterns;
        let samples = [
            "",
            " ",
            "a",
            "a@b",
            "a@b.co",
            "a@b.c",
            "jane.doe+crm@example.com",
            "a b@c.de",
            "@c.de",
            "a@-b.de",
            "a@b.d3",
            "a..b@c.de",
            "x@xn--p1ai.ru",
            "a@b.xn--p1ai",
            "https://example.com/a?b#c",
            "http://localhost:8080",
            "javascript:alert(1)",
            "https://",
            "https://exa mple.com",
            "ftp://example.com",
            "https://ü.de/x",
            "+1 (555) 123-4567",
            "555.1234",
            "123",
            "12",
            "+",
            "555-CALL",
            "++123",
            "+33 1 23 45 67 89 x12",
            "(((1)))2 3",
        ];
        for s in samples {
            if matches(patterns::EMAIL, s) {
                assert!(is_email(s), "email pattern accepts {s:?}");
            }
            if matches(patterns::URL, s) {
                assert!(is_url(s), "url pattern accepts {s:?}");
            }
            if matches(patterns::PHONE, s) {
                assert!(is_phone(s), "phone pattern accepts {s:?}");
            }
        }
        for ok in ["a@b.co", "jane.doe+crm@example.com"] {
            assert!(matches(patterns::EMAIL, ok), "{ok}");
        }
        for ok in ["https://example.com/a?b#c", "http://localhost:8080"] {
            assert!(matches(patterns::URL, ok), "{ok}");
        }
        for ok in ["+1 (555) 123-4567", "555.1234", "123"] {
            assert!(matches(patterns::PHONE, ok), "{ok}");
        }
        assert!(matches(patterns::REQUIRED_TEXT, " a "));
        assert!(!matches(patterns::REQUIRED_TEXT, "   "));
        assert!(!matches(patterns::TEXT, "a\u{0}b"));
    }

    /// Filter values the list parameters' patterns accept, the core's parser reads.
    #[test]
    fn list_parameter_patterns_agree_with_the_parser() {
        let samples = [
            "true",
            "false",
            "null",
            "TRUE",
            "1",
            "-42",
            "999999999999999999",
            "1.5",
            "abc",
            "",
            "00000000-0000-0000-0000-000000000001",
            "00000000000000000000000000000001",
            "2030-01-15",
            "2030-02-28",
            "2030-02-30",
            "2030-1-5",
            "1999-12-28T23:59:59Z",
            "2030-01-15T10:00:00.123456Z",
            "2030-01-15T10:00:00+02:00",
            "2030-13-01",
        ];
        for ty in [
            FieldType::Bool,
            FieldType::Int,
            FieldType::Text,
            FieldType::Id,
            FieldType::Time,
            FieldType::Date,
        ] {
            let spec = FieldSpec::filter("f", ty);
            let eq = super::eq_schema(&spec)["pattern"]
                .as_str()
                .unwrap()
                .to_owned();
            let bound = super::bound_schema(&spec);
            for s in samples {
                if matches(&eq, s) {
                    assert!(spec.parse_value(s).is_ok(), "{ty:?} eq accepts {s:?}");
                }
                if let Some(p) = bound["pattern"].as_str()
                    && matches(p, s)
                {
                    assert!(spec.parse_value(s).is_ok(), "{ty:?} bound accepts {s:?}");
                }
            }
            let two = format!(
                "{0},{0}",
                samples
                    .iter()
                    .find(|s| spec.parse_value(s).is_ok() && **s != "null")
                    .unwrap()
            );
            assert!(matches(&eq, &two), "{ty:?}: {two}");
        }
    }
}
