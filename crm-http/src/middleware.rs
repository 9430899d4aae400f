//! The middleware every request passes through.
//!
//! * `frame` (outermost): resolves the client address (forwarding headers only from a
//!   trusted proxy) and the request id (a trusted proxy's `X-Request-Id`, or a new UUIDv7),
//!   opens the tracing span, renders coded error bodies, adds `X-Request-Id` to every
//!   response, logs the request and records its metrics; with
//!   [`HttpConfig::require_https`](crate::HttpConfig::require_https) it refuses plain HTTP.
//!   Around it, tower-http's set-header layers add the security headers (HSTS, `nosniff`,
//!   CSP `frame-ancestors 'none'`, `X-Frame-Options`, `Referrer-Policy`, `no-store`).
//!   Request ids are not tower-http's `SetRequestId` / `PropagateRequestId`: those would
//!   believe any client's `X-Request-Id` (ours only a trusted proxy's), and they put the id
//!   in the request's and the response's extensions, allocations on every request.
//! * `guard` (innermost, one per route): waits for a request slot when the host limits the
//!   requests worked on at once and the route's queue policy says so (probes and the routes
//!   that hash passwords never wait; the policy is declared with each route in the route
//!   table), authenticates the bearer token once, then applies the rate limit — per user
//!   when authenticated, per client address otherwise — and adds the `RateLimit` /
//!   `RateLimit-Policy` headers (and `Retry-After` on a refusal).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use crm_core::ratelimit::Policy;
use crm_core::{Error, ErrorKind};
use tower_http::set_header::SetResponseHeaderLayer;
use tracing::Instrument;

use crate::config::{IpNetwork, SecureTransport, canonical};
use crate::error::{ApiError, ErrorReport, render};
use crate::extract::{Authn, RequestContext, authenticate};
use crate::routes::{Queue, RouteGuard};
use crate::state::AppState;

/// Name of the request-id header.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

fn trusted(nets: &[IpNetwork], ip: IpAddr) -> bool {
    nets.iter().any(|n| n.contains(ip))
}

/// The client address of a request from a trusted proxy: the right-most `X-Forwarded-For`
/// entry that is not itself a trusted proxy.
fn forwarded_client(headers: &HeaderMap, nets: &[IpNetwork]) -> Option<IpAddr> {
    let mut hops: Vec<IpAddr> = Vec::new();
    for value in headers.get_all("x-forwarded-for") {
        for part in value.to_str().ok()?.split(',') {
            hops.push(canonical(part.trim().parse().ok()?));
        }
    }
    let mut candidate = None;
    for ip in hops.into_iter().rev() {
        candidate = Some(ip);
        if !trusted(nets, ip) {
            break;
        }
    }
    candidate
}

fn valid_request_id(v: &str) -> bool {
    (1..=128).contains(&v.len())
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

/// A new request id: a UUIDv7 (time-ordered, unique across instances) whose random bits
/// come from a per-process random seed mixed with a counter, so that no id costs a
/// `getrandom` system call (the operating system's randomness is drawn once).
fn new_request_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let z = crm_core::kind::process_unique_bits(n);
    let mut random = [0u8; 10];
    random[..8].copy_from_slice(&z.to_le_bytes());
    random[8..].copy_from_slice(&(n as u16).to_le_bytes());
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    uuid::Builder::from_unix_timestamp_millis(millis, &random)
        .into_uuid()
        .to_string()
}

/// The security headers every response carries (set by tower-http's set-header layers
/// around [`frame`], see [`security_headers`]); `Strict-Transport-Security` comes from the
/// configuration, and `Cache-Control: no-store` is added where a handler set none.
pub(crate) const SECURITY_HEADERS: [(HeaderName, &str); 4] = [
    (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    (
        header::CONTENT_SECURITY_POLICY,
        "default-src 'none'; frame-ancestors 'none'",
    ),
    (header::X_FRAME_OPTIONS, "DENY"),
    (header::REFERRER_POLICY, "no-referrer"),
];

/// The layers of [`security_headers`].
pub(crate) type SecurityHeaders = (
    SetResponseHeaderLayer<HeaderValue>,
    SetResponseHeaderLayer<HeaderValue>,
    SetResponseHeaderLayer<HeaderValue>,
    SetResponseHeaderLayer<HeaderValue>,
    SetResponseHeaderLayer<HeaderValue>,
    SetResponseHeaderLayer<HeaderValue>,
);

/// The set-header layers of every response, outermost first: HSTS, [`SECURITY_HEADERS`]
/// and `Cache-Control: no-store` unless present. They wrap [`frame`] as one layer of the
/// router, and each response header is a clone of a value made once, so they add no
/// per-request allocation.
pub(crate) fn security_headers(hsts: HeaderValue) -> SecurityHeaders {
    let [(n1, v1), (n2, v2), (n3, v3), (n4, v4)] = SECURITY_HEADERS;
    (
        SetResponseHeaderLayer::overriding(header::STRICT_TRANSPORT_SECURITY, hsts),
        SetResponseHeaderLayer::overriding(n1, HeaderValue::from_static(v1)),
        SetResponseHeaderLayer::overriding(n2, HeaderValue::from_static(v2)),
        SetResponseHeaderLayer::overriding(n3, HeaderValue::from_static(v3)),
        SetResponseHeaderLayer::overriding(n4, HeaderValue::from_static(v4)),
        SetResponseHeaderLayer::if_not_present(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ),
    )
}

/// The outermost middleware; see the [module docs](self).
pub(crate) async fn frame(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let started = Instant::now();
    let _in_flight = state.metrics().start_request();
    let nets = &state.config().trusted_proxies;
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| canonical(c.0.ip()));
    let from_proxy = peer.is_some_and(|p| trusted(nets, p));
    let client_ip = if from_proxy {
        forwarded_client(req.headers(), nets).or(peer)
    } else {
        peer
    };
    let request_id = from_proxy
        .then(|| req.headers().get(REQUEST_ID_HEADER))
        .flatten()
        .and_then(|v| v.to_str().ok())
        .filter(|v| valid_request_id(v))
        .map_or_else(new_request_id, str::to_owned);
    // `MatchedPath` is a shared string: cloning it allocates nothing.
    let matched = req.extensions().get::<MatchedPath>().cloned();
    let route = matched.as_ref().map_or("unmatched", MatchedPath::as_str);
    let method = req.method().clone();
    req.extensions_mut().insert(RequestContext {
        request_id: request_id.clone(),
        client_ip,
    });
    let span = tracing::info_span!(
        "request",
        request_id = %request_id,
        method = %method,
        route = %route,
    );
    let secure = req.extensions().get::<SecureTransport>().is_some()
        || (from_proxy
            && req
                .headers()
                .get("x-forwarded-proto")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.trim().eq_ignore_ascii_case("https")));
    let mut response = if state.config().require_https && !secure {
        ApiError::from(Error::new(ErrorKind::HttpsRequired)).into_response()
    } else {
        next.run(req).instrument(span.clone()).await
    };

    let status = response.status();
    let code = match response.extensions_mut().remove::<ErrorReport>() {
        Some(report) => {
            if status.is_server_error() {
                tracing::error!(parent: &span, status = status.as_u16(), error = ?report.error, "request failed");
            } else {
                tracing::debug!(parent: &span, status = status.as_u16(), code = %report.code(), "request refused");
            }
            let body = render(&report, &request_id);
            let headers = response.headers_mut();
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            headers.remove(header::CONTENT_LENGTH);
            *response.body_mut() = Body::from(body);
            Some(report.code())
        }
        None => None,
    };

    let headers = response.headers_mut();
    // Room for the request id and the security headers the outer layers add, at once,
    // instead of regrowing the map while they are added.
    headers.reserve(SECURITY_HEADERS.len() + 3);
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        headers.insert(HeaderName::from_static(REQUEST_ID_HEADER), v);
    }

    let elapsed = started.elapsed();
    state.metrics().record_request(
        route,
        method.as_str(),
        status.as_u16(),
        code.as_deref(),
        elapsed,
    );
    tracing::info!(
        parent: &span,
        status = status.as_u16(),
        elapsed_us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX),
        "request finished"
    );
    response
}

/// The rate-limit key of an unauthenticated client: its address, IPv6 by /64 (one host
/// commonly owns a whole /64, so per-address keys would be free to mint).
fn address_key(ip: Option<IpAddr>) -> String {
    match ip {
        Some(IpAddr::V4(v4)) => format!("ip:{v4}"),
        Some(IpAddr::V6(v6)) => {
            let s = v6.segments();
            format!("ip:{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
        None => "ip:unknown".to_owned(),
    }
}

/// Records a refusal the security log keeps: a 403 (`access_refused`, or `csrf_failed` for a
/// failed CSRF check) or a refusal of this layer's rate limiter (`limited_here`:
/// `rate_limited`, sampled by the engine); a 429 from inside (the login quota and throttle,
/// refresh, password reset) is recorded by the engine, once. Events need a workspace: the
/// caller's, else the installation's; without either nothing is recorded.
fn record_refusal(
    state: &AppState,
    report: &crate::error::ErrorReport,
    actor: Option<&crm_core::Actor>,
    client_ip: Option<IpAddr>,
    route: Option<String>,
    limited_here: bool,
) {
    use crm_core::security::{SecurityEvent, SecurityEventType as T};
    let kind = match report.error.kind() {
        ErrorKind::Forbidden if report.fields.iter().any(|f| f.field == "X-CSRF-Token") => {
            T::CsrfFailed
        }
        ErrorKind::Forbidden => T::AccessRefused,
        ErrorKind::RateLimited if limited_here => T::RateLimited,
        _ => return,
    };
    let Some(ws) = actor
        .map(crm_core::Actor::workspace_id)
        .or_else(|| state.default_workspace())
    else {
        return;
    };
    let crm = state.crm();
    let address = client_ip.map(|ip| ip.to_string());
    let mut event = SecurityEvent::new(ws, kind, crm.now()).address(address.as_deref());
    if let Some(a) = actor {
        event = event.user(a.user_id());
    }
    if let Some(route) = route {
        event = event.with("route", route);
    }
    if kind == T::AccessRefused {
        event = event.with("status", 403);
    }
    if kind == T::RateLimited {
        event = event.with("policy", if actor.is_some() { "user" } else { "address" });
    }
    crm.security_event(event);
}

/// The innermost middleware, one per route with the route's queue policy; see the
/// [module docs](self).
pub(crate) async fn guard(
    State(RouteGuard { state, queue }): State<RouteGuard>,
    mut req: Request,
    next: Next,
) -> Response {
    state.start_log_flusher();
    // Held until the answer is ready; `None` when requests are not limited.
    let _slot = match queue {
        Queue::Slot => state.request_slot().await,
        Queue::Probe | Queue::Hasher => None,
    };
    let authn = authenticate(req.headers(), &state).await;
    let (policy, key) = match &authn {
        Authn::Valid(v) => (
            Policy::User,
            format!("user:{}:{}", v.0.workspace_id(), v.0.user_id()),
        ),
        _ => {
            let ip = req
                .extensions()
                .get::<RequestContext>()
                .and_then(|c| c.client_ip);
            (Policy::Address, address_key(ip))
        }
    };
    // What a refusal's security event needs, kept without copying (the route's text is
    // made only for a refusal): this runs on every request.
    let client_ip = req
        .extensions()
        .get::<RequestContext>()
        .and_then(|c| c.client_ip);
    let matched = req.extensions().get::<MatchedPath>().cloned();
    let method = req.method().clone();
    let authenticated = match &authn {
        Authn::Valid(v) => Some(Arc::clone(v)),
        _ => None,
    };
    req.extensions_mut().insert(authn);
    let decision = state.limiter().check(policy, &key).await;
    let limited_here = decision.retry_after_secs().is_some();
    let mut response = match decision.retry_after_secs() {
        None => next.run(req).await,
        Some(secs) => ApiError::from(Error::new(ErrorKind::RateLimited).with_retry_after(secs))
            .into_response(),
    };
    if let Some(report) = response.extensions().get::<crate::error::ErrorReport>() {
        let route = matched.map(|p| format!("{method} {}", p.as_str()));
        let actor = authenticated.as_deref().map(|(actor, _)| actor);
        record_refusal(&state, report, actor, client_ip, route, limited_here);
    }
    let headers = response.headers_mut();
    for (name, value) in decision.headers() {
        // A refusal from inside (login throttling) keeps its own Retry-After.
        if name == crm_core::ratelimit::RETRY_AFTER_HEADER
            && headers.contains_key(header::RETRY_AFTER)
        {
            continue;
        }
        // Known names are static, and the value's string becomes the header's bytes
        // without a copy: this runs on every request.
        let name = match name {
            crm_core::ratelimit::RATELIMIT_HEADER => HeaderName::from_static("ratelimit"),
            crm_core::ratelimit::RATELIMIT_POLICY_HEADER => {
                HeaderName::from_static("ratelimit-policy")
            }
            crm_core::ratelimit::RETRY_AFTER_HEADER => header::RETRY_AFTER,
            other => match HeaderName::from_bytes(other.to_ascii_lowercase().as_bytes()) {
                Ok(n) => n,
                Err(_) => continue,
            },
        };
        if let Ok(v) = HeaderValue::try_from(value) {
            headers.insert(name, v);
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwarded_client_skips_trusted_hops() {
        let nets: Vec<IpNetwork> = vec!["10.0.0.0/8".parse().unwrap()];
        let mut h = HeaderMap::new();
        h.insert(
            "x-forwarded-for",
            HeaderValue::from_static("1.2.3.4, 203.0.113.9, 10.0.0.2"),
        );
        // The right-most untrusted hop: a client cannot spoof past the first real proxy.
        assert_eq!(
            forwarded_client(&h, &nets),
            Some("203.0.113.9".parse().unwrap())
        );
        h.insert("x-forwarded-for", HeaderValue::from_static("garbage"));
        assert_eq!(forwarded_client(&h, &nets), None);
    }

    #[test]
    fn ipv6_clients_are_keyed_by_their_64() {
        let a = address_key(Some("2001:db8:1:2:aaaa::1".parse().unwrap()));
        let b = address_key(Some("2001:db8:1:2:bbbb::9".parse().unwrap()));
        let c = address_key(Some("2001:db8:1:3::1".parse().unwrap()));
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert!(valid_request_id("abc-123_x.y:z"));
        assert!(!valid_request_id("bad id"));
        assert!(!valid_request_id(""));
    }

    #[test]
    fn request_ids_are_distinct_uuid_v7s() {
        let ids: std::collections::HashSet<String> =
            (0..10_000).map(|_| new_request_id()).collect();
        assert_eq!(ids.len(), 10_000);
        for id in ids.iter().take(10) {
            let u = uuid::Uuid::parse_str(id).unwrap();
            assert_eq!(u.get_version_num(), 7, "{id}");
            assert!(valid_request_id(id));
        }
    }
}
