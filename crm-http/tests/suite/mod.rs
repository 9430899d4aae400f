//! The HTTP suite: every test starts a real server on 127.0.0.1:0 over a fresh store from
//! a pluggable factory and drives it over HTTP with a cookie-keeping client.
//!
//! A backend instantiates the whole suite with one line:
//!
//! ```text
//! mod suite;
//! fn store() -> Pin<Box<dyn Future<Output = suite::StoreHandle> + Send>> { ... }
//! http_suite!(store);
//! ```
//!
//! A test starts with `Server::admin(store)` (a server and its bootstrap admin's session);
//! `Session::add_user` (or `add_role`), `create` and `contact` make what it needs;
//! `Request::refused` sends and asserts a coded error; `Session::assert_bad_queries` checks a
//! table of refused query strings. `http_suite!` lists every test by hand and `tests/suite_list.rs` checks that it
//! misses none (nor a file of this folder).

#![allow(dead_code, missing_docs)]

pub mod auth;
pub mod dashboard;
pub mod errors;
pub mod feed;
pub mod matrix;
pub mod monitoring;
pub mod privacy;
pub mod protection;
pub mod resources;
pub mod security;

use std::any::Any;
use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crm_core::identity::{Identity, IdentityConfig, ResetDelivery, Secret, SecretToken};
use crm_core::model::User;
use crm_core::ratelimit::{Quota, RateLimitConfig};
use crm_core::testkit::setup::fast_passwords;
use crm_core::testkit::{Call, Hook, Intercepted};
use crm_core::{Crm, CrmConfig, Storage, Timestamp};
use crm_http::{AppState, HttpConfig};
use reqwest::Method;
use serde_json::{Value, json};

/// The collections of the API: the record resources and the users.
pub const COLLECTIONS: [&str; 7] = [
    "/companies",
    "/contacts",
    "/deals",
    "/notes",
    "/tasks",
    "/tags",
    "/users",
];

/// A store and whatever must live as long as it (a temp dir, a database).
pub struct StoreHandle {
    pub storage: Arc<dyn Storage>,
    pub guard: Box<dyn Any + Send>,
}

/// Builds a fresh, empty store (async, so a database-backed store can connect and create
/// its own database).
pub type StoreFactory = fn() -> Pin<Box<dyn Future<Output = StoreHandle> + Send>>;

/// A fresh redb store in a temp dir of its own (the redb suite's and the log test's).
pub fn redb() -> Pin<Box<dyn Future<Output = StoreHandle> + Send>> {
    Box::pin(async {
        let dir = tempfile::tempdir().expect("temp dir");
        let store =
            crm_store_redb::RedbStore::open(dir.path().join("crm.redb")).expect("open store");
        StoreHandle {
            storage: Arc::new(store),
            guard: Box::new(dir),
        }
    })
}

/// Instantiates every test of the suite for one store factory.
#[macro_export]
macro_rules! http_suite {
    ($factory:path) => {
        $crate::http_suite!(@tests $factory;
            auth::signup_bootstraps_then_closes,
            auth::login_answers_tokens_and_cookies,
            auth::login_failures_are_uniform,
            auth::refresh_rotates_and_reuse_kills_the_session,
            auth::cookie_refresh_needs_csrf,
            auth::logout_ends_the_session,
            auth::logout_all_and_sessions,
            auth::password_change_and_reset,
            auth::disabled_user_is_locked_out,
            resources::contacts_crud_with_etags,
            resources::every_resource_crud,
            resources::paging_to_the_end,
            resources::search_activity_and_audit,
            resources::deals_archive_move_and_merge,
            resources::users_and_me,
            resources::configuration_with_etags,
            resources::workspace_isolation,
            matrix::permission_matrix,
            privacy::export_erase_and_anonymize,
            errors::bad_inputs_are_coded,
            errors::oversized_bodies_are_413,
            errors::unknown_routes_and_methods,
            protection::security_headers_on_every_response,
            protection::rate_limit_429_with_headers,
            protection::forwarded_headers_only_from_trusted_proxies,
            protection::plain_http_refused_when_https_is_required,
            protection::concurrent_requests_are_limited_but_health_never_waits,
            protection::cors_allow_list,
            protection::compression_and_request_ids,
            protection::health_ready_metrics,
            protection::openapi_covers_every_route,
            security::every_route_refuses_anonymous_tampered_and_foreign_callers,
            security::hostile_payloads_are_stored_and_returned_as_data,
            feed::changes_walk_pages_carry_records_and_long_poll,
            feed::changes_hide_what_the_caller_may_not_read,
            feed::changes_and_batch_reads_refuse_bad_parameters,
            feed::recently_viewed_is_recorded_off_the_read_path_and_shared,
            dashboard::dashboard_figures_etags_and_bad_input,
            dashboard::lists_and_recently_viewed_carry_weak_etags,
            monitoring::security_events_record_logins_refusals_and_csrf,
            monitoring::access_log_records_reads_with_route_and_address,
            monitoring::retention_is_set_through_the_configuration,
            monitoring::refusals_are_recorded_once_with_their_address,
        );
    };
    (@tests $factory:path; $($module:ident :: $test:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $test() {
                suite::$module::$test($factory).await;
            }
        )*
    };
}

/// A store whose ping fails (the database "went away"); everything else passes through.
pub struct Unreachable;

impl Unreachable {
    /// `store`, unreachable.
    pub fn wrap(store: Arc<dyn Storage>) -> Arc<dyn Storage> {
        Arc::new(Intercepted::new(store, Unreachable))
    }
}

#[async_trait::async_trait]
impl Hook for Unreachable {
    async fn before(&self, call: Call) -> crm_core::Result<()> {
        match call {
            Call::Ping => Err(
                crm_core::Error::new(crm_core::ErrorKind::StorageUnavailable)
                    .with_source("connect to 10.9.8.7:5432: connection refused"),
            ),
            _ => Ok(()),
        }
    }
}

/// Captures password-reset tokens instead of mailing them.
#[derive(Default)]
pub struct Outbox(pub Mutex<Vec<(String, String)>>);

#[async_trait::async_trait]
impl ResetDelivery for Outbox {
    async fn deliver(
        &self,
        user: &User,
        token: &SecretToken,
        _expires_at: Timestamp,
    ) -> crm_core::Result<()> {
        self.0
            .lock()
            .unwrap()
            .push((user.email.clone(), token.expose().to_owned()));
        Ok(())
    }
}

/// Quotas high enough that only the tests about limits ever meet them.
pub fn generous_limits() -> RateLimitConfig {
    RateLimitConfig {
        user: Quota::per_minute(100_000),
        address: Quota::per_minute(100_000),
        login: Quota::per_minute(100_000),
        refresh: Quota::per_minute(100_000),
        password_reset: Quota::per_minute(100_000),
        ..RateLimitConfig::default()
    }
}

/// How a test server is set up.
pub struct Options {
    pub http: HttpConfig,
    pub prefix: &'static str,
    pub refresh_grace: Duration,
    /// Wraps the store (e.g. to inject failures).
    pub wrap: fn(Arc<dyn Storage>) -> Arc<dyn Storage>,
    /// Whether the engine keeps the access log.
    pub record_access: bool,
    /// The identity layer's quotas (login, refresh, password reset).
    pub identity_limits: RateLimitConfig,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            http: HttpConfig {
                rate_limits: generous_limits(),
                ..HttpConfig::default()
            },
            prefix: "/api/v1",
            refresh_grace: Duration::from_secs(10),
            wrap: |s| s,
            record_access: false,
            identity_limits: generous_limits(),
        }
    }
}

impl Options {
    /// The default options with the HTTP settings changed by `change`.
    pub fn http(change: impl FnOnce(&mut HttpConfig)) -> Options {
        let mut options = Options::default();
        change(&mut options.http);
        options
    }
}

/// A running server.
pub struct Server {
    pub storage: Arc<dyn Storage>,
    pub addr: SocketAddr,
    pub base: String,
    pub state: AppState,
    pub outbox: Arc<Outbox>,
    _guard: Box<dyn Any + Send>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Server {
    pub async fn start(factory: StoreFactory) -> Server {
        Self::with(factory, Options::default()).await
    }

    /// A server with default options and its bootstrap admin's session.
    pub async fn admin(factory: StoreFactory) -> (Server, Session) {
        let server = Self::start(factory).await;
        let admin = server.bootstrap().await;
        (server, admin)
    }

    pub async fn with(factory: StoreFactory, options: Options) -> Server {
        let StoreHandle { storage, guard } = factory().await;
        Self::on(storage, guard, options).await
    }

    /// A server on a given store (e.g. a second instance, or a restart, on the store of
    /// another server).
    pub async fn on(
        storage: Arc<dyn Storage>,
        guard: Box<dyn Any + Send>,
        options: Options,
    ) -> Server {
        let storage = (options.wrap)(storage);
        let crm = Crm::new(
            storage.clone(),
            CrmConfig {
                record_access: options.record_access,
                ..CrmConfig::default()
            },
        );
        let mut config = IdentityConfig::new(Secret::new(
            b"crm-http test secret, 32+ bytes long!!".to_vec(),
        ));
        config.password = fast_passwords(2, 256);
        config.rate_limits = options.identity_limits;
        config.refresh_grace = options.refresh_grace;
        let outbox = Arc::new(Outbox::default());
        let identity = Identity::new(crm, config, outbox.clone()).expect("identity");
        let state = AppState::new(identity, options.http).expect("state");
        let app = axum::Router::new().nest(options.prefix, crm_http::router(state.clone()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let task = tokio::spawn(async move {
            axum::serve(
                listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .await
            .expect("serve");
        });
        Server {
            storage,
            addr,
            base: format!("http://{addr}{}", options.prefix),
            state,
            outbox,
            _guard: guard,
            task,
        }
    }

    /// A new client (its own cookie jar).
    pub fn client(&self) -> Client {
        Client {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
            base: self.base.clone(),
            jar: Arc::new(Mutex::new(BTreeMap::new())),
        }
    }

    /// A login attempt with `body` from a fresh client.
    pub async fn try_login(&self, body: Value) -> Response {
        self.client().post("/auth/login").json(body).send().await
    }

    /// Logs the bootstrap admin (`admin@acme.test`) of `workspace` in with `password`, from a
    /// fresh client: a new session.
    pub async fn login_admin(&self, workspace: &str, password: &str) -> Session {
        login(self, workspace, "admin@acme.test", password).await
    }

    /// Signs up the installation's first workspace; the admin's session.
    pub async fn bootstrap(&self) -> Session {
        let c = self.client();
        let r = c
            .post("/auth/signup")
            .json(json!({
                "workspace_name": "Acme",
                "email": "admin@acme.test",
                "password": "admin password",
                "first_name": "Ada",
                "last_name": "Admin",
            }))
            .send()
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        Session::from_tokens(c, &r.body)
    }
}

/// A cookie: value and path.
#[derive(Debug, Clone)]
pub struct Cookie {
    pub value: String,
    pub path: String,
    pub raw: String,
}

/// An HTTP client that keeps cookies (name → cookie), sending each only under its path.
#[derive(Clone)]
pub struct Client {
    pub http: reqwest::Client,
    pub base: String,
    pub jar: Arc<Mutex<BTreeMap<String, Cookie>>>,
}

impl Client {
    pub fn request(&self, method: Method, path: &str) -> Request {
        Request {
            client: self.clone(),
            method,
            path: path.to_owned(),
            headers: Vec::new(),
            body: None,
            use_cookies: true,
        }
    }
    pub fn get(&self, path: &str) -> Request {
        self.request(Method::GET, path)
    }
    pub fn post(&self, path: &str) -> Request {
        self.request(Method::POST, path)
    }
    pub fn patch(&self, path: &str) -> Request {
        self.request(Method::PATCH, path)
    }
    pub fn delete(&self, path: &str) -> Request {
        self.request(Method::DELETE, path)
    }
    /// A `POST /auth/login` of `email` and `password`, in the installation's workspace.
    pub fn login(&self, email: &str, password: &str) -> Request {
        self.post("/auth/login")
            .json(json!({ "email": email, "password": password }))
    }
    /// A `POST /auth/refresh` of `token` in the body, without the cookies.
    pub fn refresh_with(&self, token: &str) -> Request {
        self.post("/auth/refresh")
            .no_cookies()
            .json(json!({ "refresh_token": token }))
    }
    /// A `POST /auth/refresh` by the refresh cookie, with `csrf` as `X-CSRF-Token`.
    pub fn refresh_by_cookie(&self, csrf: &str) -> Request {
        self.post("/auth/refresh").header("x-csrf-token", csrf)
    }
    /// A `POST /auth/password-reset` for `email`.
    pub fn request_reset(&self, email: &str) -> Request {
        self.post("/auth/password-reset")
            .json(json!({ "email": email }))
    }
    /// A `POST /auth/password-reset/confirm` of `token` with `new_password`.
    pub fn confirm_reset(&self, token: &str, new_password: &str) -> Request {
        self.post("/auth/password-reset/confirm")
            .json(json!({ "token": token, "new_password": new_password }))
    }
    pub fn cookie(&self, name: &str) -> Option<Cookie> {
        self.jar.lock().unwrap().get(name).cloned()
    }
}

/// A request being built.
pub struct Request {
    client: Client,
    method: Method,
    path: String,
    headers: Vec<(String, String)>,
    body: Option<(Vec<u8>, Option<String>)>,
    use_cookies: bool,
}

impl Request {
    pub fn bearer(self, token: &str) -> Self {
        self.header("authorization", &format!("Bearer {token}"))
    }
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }
    pub fn json(mut self, value: Value) -> Self {
        self.body = Some((
            serde_json::to_vec(&value).unwrap(),
            Some("application/json".into()),
        ));
        self
    }
    pub fn raw(mut self, body: impl Into<Vec<u8>>, content_type: Option<&str>) -> Self {
        self.body = Some((body.into(), content_type.map(str::to_owned)));
        self
    }
    pub fn no_cookies(mut self) -> Self {
        self.use_cookies = false;
        self
    }
    pub fn if_match(self, version: u64) -> Self {
        self.header("if-match", &format!("\"{version}\""))
    }
    /// `If-Match: *` (any version).
    pub fn if_match_any(self) -> Self {
        self.header("if-match", "*")
    }

    /// Sends the request and asserts a coded error answer ([`Response::assert_error`]),
    /// naming the request if it is not one.
    pub async fn refused(self, status: u16, code: &str) -> Response {
        let what = format!("{} {}", self.method, self.path);
        let r = self.send().await;
        assert!(
            r.status == status && r.code() == code,
            "{what}: expected {status} {code}, got {} {}",
            r.status,
            r.text
        );
        r.assert_error(status, code);
        r
    }

    pub async fn send(self) -> Response {
        let url = format!("{}{}", self.client.base, self.path);
        let url_path = reqwest::Url::parse(&url).unwrap().path().to_owned();
        let mut rb = self.client.http.request(self.method, &url);
        if self.use_cookies {
            let jar = self.client.jar.lock().unwrap();
            let cookies: Vec<String> = jar
                .iter()
                .filter(|(_, c)| url_path.starts_with(&c.path))
                .map(|(k, c)| format!("{k}={}", c.value))
                .collect();
            if !cookies.is_empty() {
                rb = rb.header("cookie", cookies.join("; "));
            }
        }
        for (k, v) in &self.headers {
            rb = rb.header(k, v);
        }
        if let Some((body, ct)) = self.body {
            if let Some(ct) = ct {
                rb = rb.header("content-type", ct);
            }
            rb = rb.body(body);
        }
        let resp = rb.send().await.expect("request");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        for v in headers.get_all("set-cookie") {
            let raw = v.to_str().unwrap().to_owned();
            let mut parts = raw.split(';').map(str::trim);
            let (name, value) = parts.next().unwrap().split_once('=').unwrap();
            let mut path = "/".to_owned();
            let mut expired = false;
            for attr in parts {
                if let Some(p) = attr.strip_prefix("Path=") {
                    path = p.to_owned();
                }
                if attr == "Max-Age=0" {
                    expired = true;
                }
            }
            let mut jar = self.client.jar.lock().unwrap();
            if expired {
                jar.remove(name);
            } else {
                jar.insert(
                    name.to_owned(),
                    Cookie {
                        value: value.to_owned(),
                        path,
                        raw: raw.clone(),
                    },
                );
            }
        }
        let bytes = resp.bytes().await.expect("body");
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Response {
            status,
            headers,
            body,
            text,
            raw: bytes.to_vec(),
        }
    }
}

/// A response.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
    pub text: String,
    /// The body's bytes as they came (still compressed when `Content-Encoding` says so).
    pub raw: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
    /// The error code of an error response.
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }
    /// Asserts an error answer: status, code, and the error shape.
    #[track_caller]
    pub fn assert_error(&self, status: u16, code: &str) {
        assert_eq!(self.status, status, "{}", self.text);
        assert_eq!(self.code(), code, "{}", self.text);
        let e = &self.body["error"];
        assert!(
            e["message"].as_str().is_some_and(|m| m.contains(code)),
            "{}",
            self.text
        );
        assert!(e["fields"].is_array(), "{}", self.text);
        let rid = e["request_id"].as_str().unwrap_or("");
        assert!(!rid.is_empty(), "{}", self.text);
        assert_eq!(self.header("x-request-id"), Some(rid));
        assert_eq!(
            self.header("content-type"),
            Some("application/json"),
            "{}",
            self.text
        );
    }
    /// The names of the failing fields.
    pub fn fields(&self) -> Vec<String> {
        self.body["error"]["fields"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|f| f["field"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }
    /// The names of the failing fields, sorted.
    pub fn sorted_fields(&self) -> Vec<String> {
        let mut fields = self.fields();
        fields.sort();
        fields
    }
    pub fn etag(&self) -> Option<String> {
        self.header("etag").map(str::to_owned)
    }
}

/// A signed-in user: its client (cookies), tokens and identity.
#[derive(Clone)]
pub struct Session {
    pub client: Client,
    pub access: String,
    pub refresh: String,
    pub csrf: String,
    pub user_id: String,
    pub workspace_id: String,
}

impl Session {
    pub fn from_tokens(client: Client, body: &Value) -> Session {
        Session {
            client,
            access: body["access_token"].as_str().unwrap().to_owned(),
            refresh: body["refresh_token"].as_str().unwrap().to_owned(),
            csrf: body["csrf_token"].as_str().unwrap().to_owned(),
            user_id: body["user"]["id"].as_str().unwrap().to_owned(),
            workspace_id: body["user"]["workspace_id"].as_str().unwrap().to_owned(),
        }
    }
    pub fn get(&self, path: &str) -> Request {
        self.client.get(path).bearer(&self.access)
    }
    pub fn post(&self, path: &str) -> Request {
        self.client.post(path).bearer(&self.access)
    }
    pub fn patch(&self, path: &str) -> Request {
        self.client.patch(path).bearer(&self.access)
    }
    pub fn delete(&self, path: &str) -> Request {
        self.client.delete(path).bearer(&self.access)
    }

    /// Asserts that each `prefix + query` of `cases` is refused with 400 `E2003` naming just
    /// its field.
    pub async fn assert_bad_queries<Q: AsRef<str>>(&self, prefix: &str, cases: &[(Q, &str)]) {
        for (query, field) in cases {
            let query = query.as_ref();
            let r = self.get(&format!("{prefix}{query}")).send().await;
            assert_eq!(r.status, 400, "{prefix}{query}: {}", r.text);
            r.assert_error(400, "E2003");
            assert_eq!(r.fields(), [*field], "{prefix}{query}");
        }
    }

    /// Asserts that each `path?query` of `cases` is refused with a 400 coded `E2...` naming
    /// just its field, and that none of them changed what `path?limit=500` answers.
    pub async fn assert_bad_filters(&self, path: &str, cases: &[(&str, &str)]) {
        let before = self.get(&format!("{path}?limit=500")).send().await.body;
        for (query, field) in cases {
            let r = self.get(&format!("{path}?{query}")).send().await;
            r.assert_error(400, r.code());
            assert!(r.code().starts_with("E2"), "{query}: {}", r.text);
            assert_eq!(r.fields(), [*field], "{query}");
        }
        let after = self.get(&format!("{path}?limit=500")).send().await.body;
        assert_eq!(before, after, "malformed filters changed nothing");
    }

    /// Creates a contact with just a name and returns its body.
    pub async fn contact(&self, first_name: &str, last_name: &str) -> Value {
        self.create(
            "/contacts",
            json!({ "first_name": first_name, "last_name": last_name }),
        )
        .await
    }

    /// Creates `n` contacts, `{first}0 {last}` to `{first}{n-1} {last}`, in order; their ids.
    pub async fn numbered_contacts(&self, n: usize, first: &str, last: &str) -> Vec<String> {
        let mut ids = Vec::new();
        for i in 0..n {
            ids.push(id(&self.contact(&format!("{first}{i}"), last).await));
        }
        ids
    }

    /// Creates a record and returns its body.
    pub async fn create(&self, path: &str, body: Value) -> Value {
        let r = self.post(path).json(body).send().await;
        assert_eq!(r.status, 201, "POST {path}: {}", r.text);
        r.body
    }

    /// Admin: creates a user of `role`, `{role}@acme.test`, and signs it in.
    pub async fn add_role(&self, server: &Server, role: &str) -> Session {
        self.add_user(server, &format!("{role}@acme.test"), role)
            .await
    }

    /// Admin: creates a user with a role and password, and signs it in.
    pub async fn add_user(&self, server: &Server, email: &str, role: &str) -> Session {
        let r = self
            .post("/users")
            .json(json!({ "email": email, "role": role, "password": "user password" }))
            .send()
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        login(server, &self.workspace_id, email, "user password").await
    }
}

/// Logs in with a fresh client.
pub async fn login(server: &Server, workspace: &str, email: &str, password: &str) -> Session {
    let c = server.client();
    let r = c
        .post("/auth/login")
        .json(json!({ "workspace_id": workspace, "email": email, "password": password }))
        .send()
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    Session::from_tokens(c, &r.body)
}

/// The string `field` of each item of a list body's `data`, in order.
pub fn data_field(body: &Value, field: &str) -> Vec<String> {
    let items = body["data"].as_array().expect("data");
    items
        .iter()
        .map(|i| i[field].as_str().expect(field).to_owned())
        .collect()
}

/// The id of a record body.
pub fn id(body: &Value) -> String {
    body["id"].as_str().expect("id").to_owned()
}

/// The version of a record body.
pub fn version(body: &Value) -> u64 {
    body["version"].as_u64().expect("version")
}
