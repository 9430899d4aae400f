//! What the HTTP fuzz targets share: a runtime, the adapter over the in-memory reference
//! store with limits out of the way, and a way to call it in process.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, header};
use crm_core::identity::{Identity, IdentityConfig, PasswordConfig, Secret};
use crm_core::ratelimit::{Quota, RateLimitConfig};
use crm_core::testkit::MemoryStore;
use crm_core::{Crm, CrmConfig};
use crm_http::{AppState, HttpConfig};
use tower::ServiceExt;

/// One current-thread runtime for the whole fuzzing process.
pub fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    })
}

/// Sends `req` to `app`: status, headers and body.
pub async fn call(app: &Router, req: Request<Body>) -> (u16, HeaderMap, Vec<u8>) {
    let res = app.clone().oneshot(req).await.unwrap();
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    let body = axum::body::to_bytes(res.into_body(), usize::MAX)
        .await
        .unwrap()
        .to_vec();
    (status, headers, body)
}

/// A JSON request, with a bearer header if given.
pub fn json_req(method: &str, uri: &str, bearer: Option<&str>, body: serde_json::Value) -> Request<Body> {
    let mut b = Request::builder()
        .method(method)
        .uri(uri)
        .header(header::CONTENT_TYPE, "application/json");
    if let Some(t) = bearer {
        b = b.header(header::AUTHORIZATION, t);
    }
    b.body(Body::from(body.to_string())).unwrap()
}

/// The router at `/api/v1` over a fresh in-memory store, rate limits out of the way, cheap
/// password hashing and the given refresh grace window; then the first sign-up (admin
/// `a@fuzz.test`, password `pw`), whose answer comes back too.
pub async fn app_with_admin(refresh_grace: Duration) -> (Router, HeaderMap, serde_json::Value) {
    let plenty = Quota::per_minute(1_000_000_000);
    let limits = RateLimitConfig {
        user: plenty,
        address: plenty,
        login: plenty,
        refresh: plenty,
        password_reset: plenty,
        ..RateLimitConfig::default()
    };
    let crm = Crm::new(Arc::new(MemoryStore::new()), CrmConfig::default());
    let mut config = IdentityConfig::new(Secret::new(b"fuzz secret, long enough for HS256".to_vec()));
    config.password = PasswordConfig { cost: 4, workers: 1, queue: 16 };
    config.rate_limits = limits.clone();
    config.refresh_grace = refresh_grace;
    struct Nowhere;
    #[async_trait::async_trait]
    impl crm_core::identity::ResetDelivery for Nowhere {
        async fn deliver(
            &self,
            _: &crm_core::model::User,
            _: &crm_core::identity::SecretToken,
            _: crm_core::Timestamp,
        ) -> crm_core::Result<()> {
            Ok(())
        }
    }
    let identity = Identity::new(crm, config, Arc::new(Nowhere)).unwrap();
    let http = HttpConfig { rate_limits: limits, ..HttpConfig::default() };
    let app = Router::new().nest("/api/v1", crm_http::router(AppState::new(identity, http).unwrap()));
    let (status, headers, body) = call(
        &app,
        json_req(
            "POST",
            "/api/v1/auth/signup",
            None,
            serde_json::json!({"workspace_name": "Fuzz", "email": "a@fuzz.test", "password": "pw"}),
        ),
    )
    .await;
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(status, 201, "{v}");
    (app, headers, v)
}
