//! The route table: one list that both builds the [`axum::Router`] and generates the
//! OpenAPI document, so no route can be served without being documented.

use std::collections::BTreeMap;

use axum::Router;
use axum::handler::Handler;
use axum::http::Method;
use axum::routing::{MethodFilter, MethodRouter, on};
use crm_core::model::{Company, Contact, Deal, EntityKind, Note, Tag, Task};

use crate::handlers::records::{self, Resource};
use crate::handlers::{auth, changes, misc, privacy, security, users};
use crate::state::AppState;

/// Whether an operation takes `If-Match`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Precondition {
    /// No.
    None,
    /// Yes, required (`428` without it).
    Required,
    /// Checked when given.
    Optional,
}

/// Query parameters of an operation, for the document.
#[derive(Debug, Clone)]
pub(crate) enum QueryDoc {
    /// None.
    None,
    /// A list of records of this kind: `q`, `sort`, `limit`, `cursor`, `deleted` and the
    /// kind's filters.
    List(EntityKind),
    /// Named parameters.
    Params(Vec<Param>),
}

/// A named query parameter of an operation, for the document.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Param {
    /// Its name.
    pub name: &'static str,
    /// What it holds.
    pub ty: ParamType,
    /// Whether the operation refuses a request without it.
    pub required: bool,
    /// Its description.
    pub description: &'static str,
}

/// An optional query parameter.
fn param(name: &'static str, ty: ParamType, description: &'static str) -> Param {
    Param {
        name,
        ty,
        required: false,
        description,
    }
}

impl Param {
    /// The same parameter, required.
    fn required(self) -> Param {
        Param {
            required: true,
            ..self
        }
    }
}

/// What a named query parameter holds, for its schema in the document (the handler parses
/// and checks it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ParamType {
    /// Free text.
    Text,
    /// A whole number from `min` to `max`, `default` when left out.
    Int {
        /// The smallest accepted.
        min: u32,
        /// The largest accepted.
        max: u32,
        /// The value when left out.
        default: u32,
    },
    /// A record's or a user's id (a UUID).
    Id,
    /// An instant (RFC 3339).
    Time,
    /// A date (`YYYY-MM-DD`).
    Date,
    /// The noun of one kind of the change feed (`contact`).
    Kind,
    /// Nouns of kinds of the change feed, comma-separated (`contact,deal`).
    Kinds,
    /// Names of record kinds, comma-separated, as audit entries name them.
    EntityKinds,
    /// Names of audit actions, comma-separated (`create,update`).
    AuditActions,
    /// The name of a security event type (`login_failed`).
    EventType,
}

/// Who may call an operation, for the document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    /// Anyone.
    Public,
    /// A bearer access token.
    Bearer,
    /// A bearer token, or a refresh token (body, or cookie with `X-CSRF-Token`).
    BearerOrRefresh,
    /// A refresh token (body, or cookie with `X-CSRF-Token`).
    Refresh,
}

/// Whether an operation waits for a request slot when the host limits the requests worked
/// on at once ([`HttpConfig::max_concurrent_requests`](crate::HttpConfig::max_concurrent_requests)).
/// Applied per route by [`build`], so no path is matched at run time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Queue {
    /// Waits for a slot (every operation not named below, and requests that match no route).
    Slot,
    /// Never waits: a probe or the metrics, which must answer while the API is saturated.
    Probe,
    /// Never waits: it hashes a password. The password hasher's own bounded queue limits
    /// these, and they must not hold a slot while they wait for it (a login flood would
    /// otherwise stall the whole API).
    Hasher,
}

/// One operation.
pub(crate) struct RouteDef {
    pub method: Method,
    pub path: String,
    pub operation_id: String,
    pub summary: String,
    pub tag: &'static str,
    pub access: Access,
    pub body: Option<(String, bool)>,
    pub query: QueryDoc,
    pub ok_status: u16,
    pub ok_schema: Option<String>,
    pub etag: bool,
    pub precondition: Precondition,
    pub queue: Queue,
    pub handler: MethodRouter<AppState>,
}

fn filter(method: &Method) -> MethodFilter {
    MethodFilter::try_from(method.clone()).unwrap_or(MethodFilter::GET)
}

pub(crate) fn op<H, T>(
    method: Method,
    path: impl Into<String>,
    operation_id: impl Into<String>,
    summary: impl Into<String>,
    tag: &'static str,
    handler: H,
) -> RouteDef
where
    H: Handler<T, AppState>,
    T: 'static,
{
    let handler = on(filter(&method), handler);
    RouteDef {
        method,
        path: path.into(),
        operation_id: operation_id.into(),
        summary: summary.into(),
        tag,
        access: Access::Bearer,
        body: None,
        query: QueryDoc::None,
        ok_status: 200,
        ok_schema: None,
        etag: false,
        precondition: Precondition::None,
        queue: Queue::Slot,
        handler,
    }
}

impl RouteDef {
    fn access(mut self, access: Access) -> Self {
        self.access = access;
        self
    }
    fn public(self) -> Self {
        self.access(Access::Public)
    }
    pub(crate) fn body(mut self, schema: impl Into<String>) -> Self {
        self.body = Some((schema.into(), true));
        self
    }
    fn optional_body(mut self, schema: impl Into<String>) -> Self {
        self.body = Some((schema.into(), false));
        self
    }
    fn query(mut self, q: QueryDoc) -> Self {
        self.query = q;
        self
    }
    pub(crate) fn ok(mut self, status: u16, schema: impl Into<String>) -> Self {
        self.ok_status = status;
        self.ok_schema = Some(schema.into());
        self
    }
    fn empty(mut self, status: u16) -> Self {
        self.ok_status = status;
        self.ok_schema = None;
        self
    }
    pub(crate) fn etag(mut self) -> Self {
        self.etag = true;
        self
    }
    fn if_match(mut self, p: Precondition) -> Self {
        self.precondition = p;
        self
    }
    /// Answers a record (200, `schema`) with its ETag and needs an `If-Match` (a guarded
    /// write of one record).
    fn versioned(self, schema: impl Into<String>) -> Self {
        self.ok(200, schema).etag().if_match(Precondition::Required)
    }
    /// A probe: never waits for a request slot.
    fn probe(mut self) -> Self {
        self.queue = Queue::Probe;
        self
    }
    /// Hashes a password: never waits for a request slot (see [`Queue::Hasher`]).
    fn hashes_password(mut self) -> Self {
        self.queue = Queue::Hasher;
        self
    }
}

fn resource<E: Resource>(out: &mut Vec<RouteDef>, tag: &'static str) {
    let p = E::PATH;
    let n = E::NAME;
    let noun = E::KIND.noun();
    out.push(
        op(
            Method::GET,
            p,
            format!("list{n}s"),
            format!("List {noun}s"),
            tag,
            records::list::<E>,
        )
        .query(QueryDoc::List(E::KIND))
        .ok(200, format!("{n}Page"))
        .etag(),
    );
    out.push(
        op(
            Method::POST,
            p,
            format!("create{n}"),
            format!("Create a {noun}"),
            tag,
            records::create::<E>,
        )
        .body(format!("{n}Input"))
        .ok(201, n)
        .etag(),
    );
    let one = format!("{p}/{{id}}");
    out.push(
        op(
            Method::GET,
            &one,
            format!("get{n}"),
            format!("Get a {noun}"),
            tag,
            records::get::<E>,
        )
        .ok(200, n)
        .etag(),
    );
    out.push(
        op(
            Method::PATCH,
            &one,
            format!("update{n}"),
            format!("Update a {noun}"),
            tag,
            records::update::<E>,
        )
        .body(format!("{n}Patch"))
        .versioned(n),
    );
    out.push(
        op(
            Method::DELETE,
            &one,
            format!("delete{n}"),
            format!("Delete a {noun} (soft)"),
            tag,
            records::delete::<E>,
        )
        .empty(204)
        .if_match(Precondition::Optional),
    );
    out.push(
        op(
            Method::POST,
            format!("{one}/restore"),
            format!("restore{n}"),
            format!("Restore a deleted {noun}"),
            tag,
            records::restore::<E>,
        )
        .ok(200, n)
        .etag(),
    );
    out.push(
        op(
            Method::POST,
            format!("{one}/purge"),
            format!("purge{n}"),
            format!("Delete a {noun} permanently"),
            tag,
            records::purge::<E>,
        )
        .empty(204),
    );
}

/// Every operation of the API.
pub(crate) fn table() -> Vec<RouteDef> {
    use Method as M;
    let mut t = vec![
        op(
            M::GET,
            "/health",
            "health",
            "Liveness (no storage access)",
            "operations",
            misc::health,
        )
        .public()
        .probe()
        .ok(200, "Status"),
        op(
            M::GET,
            "/ready",
            "ready",
            "Readiness (storage reachable)",
            "operations",
            misc::ready,
        )
        .public()
        .probe()
        .ok(200, "Status"),
        op(
            M::GET,
            "/metrics",
            "metrics",
            "Prometheus metrics (text format)",
            "operations",
            misc::metrics,
        )
        .public()
        .probe()
        .ok(200, "MetricsText"),
        op(
            M::GET,
            "/openapi.json",
            "openapi",
            "This OpenAPI document",
            "operations",
            misc::openapi,
        )
        .public()
        .ok(200, "OpenApiDocument"),
        op(
            M::POST,
            "/auth/signup",
            "signup",
            "Create a workspace and its first admin, and sign in",
            "auth",
            auth::signup,
        )
        .public()
        .hashes_password()
        .body("SignupRequest")
        .ok(201, "SignupResponse"),
        op(
            M::POST,
            "/auth/login",
            "login",
            "Sign in",
            "auth",
            auth::login,
        )
        .public()
        .hashes_password()
        .body("LoginRequest")
        .ok(200, "TokenResponse"),
        op(
            M::POST,
            "/auth/refresh",
            "refresh",
            "Rotate the refresh token",
            "auth",
            auth::refresh,
        )
        .access(Access::Refresh)
        .optional_body("RefreshRequest")
        .ok(200, "TokenResponse"),
        op(
            M::POST,
            "/auth/logout",
            "logout",
            "End the current session",
            "auth",
            auth::logout,
        )
        .access(Access::BearerOrRefresh)
        .optional_body("RefreshRequest")
        .empty(204),
        op(
            M::POST,
            "/auth/logout-all",
            "logoutAll",
            "End every session of the caller",
            "auth",
            auth::logout_all,
        )
        .empty(204),
        op(
            M::GET,
            "/auth/sessions",
            "listSessions",
            "The caller's active sessions",
            "auth",
            auth::sessions,
        )
        .ok(200, "SessionList"),
        op(
            M::DELETE,
            "/auth/sessions/{id}",
            "revokeSession",
            "End one of the caller's sessions",
            "auth",
            auth::revoke_session,
        )
        .empty(204),
        op(
            M::POST,
            "/auth/password",
            "changePassword",
            "Change the caller's password (other sessions end)",
            "auth",
            auth::change_password,
        )
        .body("PasswordChangeRequest")
        .hashes_password()
        .empty(204),
        op(
            M::POST,
            "/auth/password-reset",
            "requestPasswordReset",
            "Send a password-reset token (same answer whether or not the email exists)",
            "auth",
            auth::request_reset,
        )
        .public()
        .body("PasswordResetRequest")
        .empty(202),
        op(
            M::POST,
            "/auth/password-reset/confirm",
            "confirmPasswordReset",
            "Set a new password with a reset token (every session ends)",
            "auth",
            auth::confirm_reset,
        )
        .public()
        .hashes_password()
        .body("PasswordResetConfirm")
        .empty(204),
        op(
            M::GET,
            "/me",
            "getMe",
            "The caller, its workspace and session",
            "users",
            users::me,
        )
        .ok(200, "Me")
        .etag(),
        op(
            M::GET,
            "/me/recent",
            "recentlyViewed",
            "The caller's recently viewed records of a kind, newest first (last 100)",
            "users",
            changes::recent,
        )
        .query(QueryDoc::Params(vec![
            param("entity", ParamType::Kind, "The kind: company, contact, deal, note, task or tag; required.").required(),
            param("limit", ParamType::Int { min: 1, max: 100, default: 100 }, "At most this many (1..=100, default 100)."),
        ]))
        .ok(200, "RecentList")
        .etag(),
        op(
            M::PATCH,
            "/me",
            "updateMe",
            "Update the caller's profile",
            "users",
            users::update_me,
        )
        .body("UserPatch")
        .versioned("User"),
        op(
            M::GET,
            "/users",
            "listUsers",
            "List users",
            "users",
            users::list,
        )
        .query(QueryDoc::List(EntityKind::User))
        .ok(200, "UserPage")
        .etag(),
        op(
            M::POST,
            "/users",
            "createUser",
            "Create a user (admins)",
            "users",
            users::create,
        )
        .body("CreateUserRequest")
        .hashes_password()
        .ok(201, "User")
        .etag(),
        op(
            M::GET,
            "/users/{id}",
            "getUser",
            "Get a user",
            "users",
            users::get,
        )
        .ok(200, "User")
        .etag(),
        op(
            M::PATCH,
            "/users/{id}",
            "updateUser",
            "Update a user's profile",
            "users",
            users::update,
        )
        .body("UserPatch")
        .versioned("User"),
        op(
            M::POST,
            "/users/{id}/role",
            "setUserRole",
            "Change a user's role (admins)",
            "users",
            users::set_role,
        )
        .body("RoleRequest")
        .versioned("User"),
        op(
            M::POST,
            "/users/{id}/disable",
            "disableUser",
            "Disable a user; its sessions end (admins)",
            "users",
            users::disable,
        )
        .versioned("User"),
        op(
            M::POST,
            "/users/{id}/enable",
            "enableUser",
            "Enable a user (admins)",
            "users",
            users::enable,
        )
        .versioned("User"),
        op(
            M::POST,
            "/users/{id}/password",
            "setUserPassword",
            "Set a user's password; its sessions end (admins)",
            "users",
            users::set_password,
        )
        .body("SetPasswordRequest")
        .hashes_password()
        .empty(204),
        op(
            M::GET,
            "/configuration",
            "getConfiguration",
            "The workspace configuration",
            "workspace",
            misc::get_configuration,
        )
        .ok(200, "Configuration")
        .etag(),
        op(
            M::PATCH,
            "/configuration",
            "updateConfiguration",
            "Change the workspace configuration (admins)",
            "workspace",
            misc::update_configuration,
        )
        .body("ConfigurationPatch")
        .versioned("Configuration"),
        op(
            M::GET,
            "/search",
            "search",
            "Search companies, contacts and deals (word prefixes)",
            "workspace",
            misc::search,
        )
        .query(QueryDoc::Params(vec![
            param("q", ParamType::Text, "The words to find (prefixes of words of the records); required.").required(),
            param("limit", ParamType::Int { min: 1, max: 100, default: 25 }, "At most this many of each kind (1..=100, default 25)."),
        ]))
        .ok(200, "SearchResults")
        .etag(),
        op(
            M::GET,
            "/activity",
            "activity",
            "Recent activity (records created, notes added), newest first",
            "workspace",
            misc::activity,
        )
        .query(QueryDoc::Params(vec![
            param("limit", ParamType::Int { min: 1, max: 100, default: 25 }, "Page size (1..=100, default 25)."),
            param("cursor", ParamType::Id, "`next_cursor` of the previous page."),
        ]))
        .ok(200, "ActivityPage")
        .etag(),
        op(
            M::GET,
            "/dashboard",
            "dashboard",
            "The caller's dashboard: deals per stage, open tasks, latest activity, hot contacts, record counts",
            "workspace",
            changes::dashboard,
        )
        .query(QueryDoc::Params(vec![param("today", ParamType::Date, "The caller's local date (YYYY-MM-DD) the task windows are computed from; default: today in UTC.")]))
        .ok(200, "Dashboard")
        .etag(),
        op(
            M::GET,
            "/audit",
            "audit",
            "The audit trail, newest first (admins and managers)",
            "workspace",
            misc::audit,
        )
        .query(QueryDoc::Params(vec![
            param("record_id", ParamType::Id, "Only entries about this record."),
            param("actor_id", ParamType::Id, "Only entries of this user's own actions."),
            param("entity", ParamType::EntityKinds, "Only these kinds (comma-separated, e.g. `contact,deal`)."),
            param("action", ParamType::AuditActions, "Only these actions (comma-separated, e.g. `create,update`)."),
            param("limit", ParamType::Int { min: 1, max: 100, default: 25 }, "Page size (1..=100, default 25)."),
            param("cursor", ParamType::Id, "`next_cursor` of the previous page."),
        ]))
        .ok(200, "AuditPage")
        .etag(),
        op(
            M::GET,
            "/security-events",
            "securityEvents",
            "Security events: logins, refusals, revocations, anomalies, newest first (admins)",
            "workspace",
            security::security_events,
        )
        .query(QueryDoc::Params(vec![
            param("type", ParamType::EventType, "Only this type (e.g. `login_failed`, `anomaly`)."),
            param("user_id", ParamType::Id, "Only events about or by this user."),
            param("since", ParamType::Time, "Only events at or after this instant (RFC 3339)."),
            param("limit", ParamType::Int { min: 1, max: 500, default: 50 }, "Page size (1..=500, default 50)."),
            param("cursor", ParamType::Id, "`next_cursor` of the previous page."),
        ]))
        .ok(200, "SecurityEventPage"),
        op(
            M::GET,
            "/access-log",
            "accessLog",
            "Who read which records, when, how and from where, newest first (admins)",
            "workspace",
            security::access_log,
        )
        .query(QueryDoc::Params(vec![
            param("record_id", ParamType::Id, "Only reads of this record."),
            param("user_id", ParamType::Id, "Only reads by this user."),
            param("since", ParamType::Time, "Only entries at or after this instant (RFC 3339)."),
            param("until", ParamType::Time, "Only entries before this instant (RFC 3339)."),
            param("limit", ParamType::Int { min: 1, max: 500, default: 50 }, "Page size (1..=500, default 50)."),
            param("cursor", ParamType::Id, "`next_cursor` of the previous page."),
        ]))
        .ok(200, "AccessLogPage"),
        op(
            M::GET,
            "/changes",
            "changes",
            "The change feed: what changed after a cursor, in order, as the caller may see it",
            "workspace",
            changes::changes,
        )
        .query(QueryDoc::Params(vec![
            param("since", ParamType::Text, "`next_cursor` (or an item's `cursor`) of an earlier page; none: from the beginning. A cursor older than the feed keeps answers 410 (E2005): resync from scratch."),
            param("limit", ParamType::Int { min: 1, max: 1000, default: 100 }, "Page size (1..=1000, default 100)."),
            param("entities", ParamType::Kinds, "Only these kinds (comma-separated: company, contact, deal, note, task, tag)."),
            param("wait", ParamType::Int { min: 0, max: 30, default: 0 }, "Long poll: with nothing new, wait up to this many seconds (0..=30, default 0) and answer as soon as a change arrives."),
        ]))
        .ok(200, "ChangePage"),
    ];
    resource::<Company>(&mut t, "companies");
    resource::<Contact>(&mut t, "contacts");
    t.push(
        op(
            M::POST,
            "/contacts/{id}/merge",
            "mergeContacts",
            "Merge another contact into this one (admins and managers)",
            "contacts",
            records::merge_contacts,
        )
        .body("MergeRequest")
        .ok(200, "Contact")
        .etag(),
    );
    resource::<Deal>(&mut t, "deals");
    t.push(
        op(
            M::POST,
            "/deals/{id}/archive",
            "archiveDeal",
            "Archive a deal",
            "deals",
            records::archive_deal,
        )
        .versioned("Deal"),
    );
    t.push(
        op(
            M::POST,
            "/deals/{id}/unarchive",
            "unarchiveDeal",
            "Put an archived deal back on the board",
            "deals",
            records::unarchive_deal,
        )
        .versioned("Deal"),
    );
    t.push(
        op(
            M::POST,
            "/deals/{id}/move",
            "moveDeal",
            "Move a deal to a stage and position",
            "deals",
            records::move_deal,
        )
        .body("MoveRequest")
        .versioned("Deal"),
    );
    resource::<Note>(&mut t, "notes");
    resource::<Task>(&mut t, "tasks");
    t.push(
        op(
            M::POST,
            "/tasks/{id}/complete",
            "completeTask",
            "Mark a task done or not done",
            "tasks",
            records::complete_task,
        )
        .body("CompleteRequest")
        .versioned("Task"),
    );
    resource::<Tag>(&mut t, "tags");
    privacy::routes(&mut t);
    t
}

/// The routes of the table, each path's methods merged into one method router. Every
/// route gets the [`guard`](crate::middleware::guard) middleware with its own queue
/// policy; so do each path's `405` answer and the `404` fallback, which wait for a slot.
pub(crate) fn build(table: Vec<RouteDef>, state: &AppState) -> Router<AppState> {
    let guard = |queue| {
        axum::middleware::from_fn_with_state(
            RouteGuard {
                state: state.clone(),
                queue,
            },
            crate::middleware::guard,
        )
    };
    let mut by_path: BTreeMap<String, MethodRouter<AppState>> = BTreeMap::new();
    for def in table {
        let handler = def.handler.route_layer(guard(def.queue));
        let merged = match by_path.remove(&def.path) {
            Some(existing) => existing.merge(handler),
            None => handler,
        };
        by_path.insert(def.path, merged);
    }
    by_path
        .into_iter()
        .fold(Router::new(), |r, (path, mr)| {
            r.route(
                &path,
                mr.fallback(misc::method_not_allowed.layer(guard(Queue::Slot))),
            )
        })
        .fallback(misc::fallback.layer(guard(Queue::Slot)))
}

/// The state of one route's [`guard`](crate::middleware::guard): the app and the route's
/// queue policy.
#[derive(Clone)]
pub(crate) struct RouteGuard {
    pub state: AppState,
    pub queue: Queue,
}

/// Every operation as `(method, path)`, in table order.
pub fn operations() -> Vec<(Method, String)> {
    table().into_iter().map(|d| (d.method, d.path)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every operation's queue policy, stated once more by hand: probes and the routes that
    /// hash passwords never wait for a slot; everything else does (session listing, logout
    /// and refresh included: they hash no password).
    #[test]
    fn every_route_has_its_intended_queue_policy() {
        let probes = [
            (Method::GET, "/health"),
            (Method::GET, "/ready"),
            (Method::GET, "/metrics"),
        ];
        let hashers = [
            (Method::POST, "/auth/signup"),
            (Method::POST, "/auth/login"),
            (Method::POST, "/auth/password"),
            (Method::POST, "/auth/password-reset/confirm"),
            (Method::POST, "/users"),
            (Method::POST, "/users/{id}/password"),
        ];
        let table = table();
        for (method, path) in probes.iter().chain(&hashers) {
            assert!(
                table.iter().any(|d| d.method == *method && d.path == *path),
                "{method} {path} is not in the table"
            );
        }
        for def in &table {
            let key = (def.method.clone(), def.path.as_str());
            let expected = if probes.contains(&key) {
                Queue::Probe
            } else if hashers.contains(&key) {
                Queue::Hasher
            } else {
                Queue::Slot
            };
            assert_eq!(def.queue, expected, "{} {}", def.method, def.path);
        }
        for (method, path) in [
            (Method::POST, "/auth/refresh"),
            (Method::POST, "/auth/logout"),
            (Method::GET, "/auth/sessions"),
            (Method::POST, "/auth/password-reset"),
            (Method::GET, "/openapi.json"),
            (Method::GET, "/users"),
        ] {
            let def = table.iter().find(|d| d.method == method && d.path == path);
            assert_eq!(def.map(|d| d.queue), Some(Queue::Slot), "{method} {path}");
        }
    }
}
