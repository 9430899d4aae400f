//! The HTTP side of the benchmarks: the crm-http router over an engine, a bearer token for an
//! existing admin, requests through the router in-process (`call`), and a minimal HTTP/1.1
//! keep-alive client over a real socket (`Conn`) for end-to-end timings.

use std::io::Read;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode, header};
use crm_core::identity::{
    Identity, IdentityConfig, LoginRequest, PasswordConfig, ResetDelivery, Secret, SecretToken,
};
use crm_core::model::{ClientInfo, User};
use crm_core::ratelimit::{Quota, RateLimitConfig};
use crm_core::{Actor, Crm, Timestamp};
use crm_http::{AppState, HttpConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tower::ServiceExt;

/// Password resets are not part of any measurement.
struct NoDelivery;

#[async_trait::async_trait]
impl ResetDelivery for NoDelivery {
    async fn deliver(&self, _: &User, _: &SecretToken, _: Timestamp) -> crm_core::Result<()> {
        Ok(())
    }
}

/// Limits no benchmark reaches.
pub fn generous_limits() -> RateLimitConfig {
    let big = Quota::per_minute(1_000_000_000);
    RateLimitConfig {
        user: big,
        address: big,
        login: big,
        refresh: big,
        password_reset: big,
        ..RateLimitConfig::default()
    }
}

/// The identity layer of the HTTP benchmarks over `crm`: tokens signed with `secret`, bcrypt
/// at its lowest cost (4), [`generous_limits`], no reset mail.
///
/// # Panics
/// If the secret is too short (a benchmark cannot continue).
pub fn identity(crm: Crm, secret: &[u8]) -> Identity {
    let mut config = IdentityConfig::new(Secret::new(secret.to_vec()));
    config.password = PasswordConfig {
        cost: 4,
        ..PasswordConfig::default()
    };
    config.rate_limits = generous_limits();
    Identity::new(crm, config, Arc::new(NoDelivery)).expect("identity")
}

/// The router over `crm`, and an access token (valid 15 minutes) of `user` of the admin's
/// workspace, whose email is `email`: the admin sets its password, then it logs in.
pub async fn api(
    crm: Crm,
    admin: &Actor,
    user: crm_core::id::UserId,
    email: &str,
) -> (axum::Router, String) {
    let identity = identity(crm, b"crm-benches http secret, 32 bytes or more");
    identity
        .set_password(admin, user, "bench password")
        .await
        .expect("password");
    let tokens = identity
        .login(LoginRequest {
            workspace_id: admin.workspace_id(),
            email: email.into(),
            password: "bench password".into(),
            client: ClientInfo::default(),
        })
        .await
        .expect("login");
    let http = HttpConfig {
        rate_limits: generous_limits(),
        ..HttpConfig::default()
    };
    let app = crm_http::router(AppState::new(identity, http).expect("state"));
    (app, tokens.access_token)
}

/// `GET path` through the router in-process, as a browser sends it (gzip accepted), with an
/// optional `If-None-Match`: the status, headers and (possibly compressed) body.
pub async fn call(
    app: &axum::Router,
    path: &str,
    token: &str,
    if_none_match: Option<&str>,
) -> (StatusCode, HeaderMap, Vec<u8>) {
    let mut req = Request::builder()
        .method("GET")
        .uri(path)
        .header(header::ACCEPT_ENCODING, "gzip, deflate, br")
        .header(header::AUTHORIZATION, format!("Bearer {token}"));
    if let Some(tag) = if_none_match {
        req = req.header(header::IF_NONE_MATCH, tag);
    }
    let req = req.body(Body::empty()).expect("request");
    let response = app.clone().oneshot(req).await.expect("infallible");
    let (parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX).await.expect("body");
    (parts.status, parts.headers, bytes.to_vec())
}

/// Serves `app` on a loopback port (with connect info, as the server does).
pub async fn serve(app: axum::Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .expect("serve");
    });
    addr
}

/// One keep-alive HTTP/1.1 connection, sending what a browser sends (gzip accepted) and
/// decoding what comes back. Just enough HTTP for the benchmarks: `Content-Length` or
/// chunked bodies, gzip or identity.
pub struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    /// Connects.
    pub async fn open(addr: SocketAddr) -> Conn {
        let stream = TcpStream::connect(addr).await.expect("connect");
        stream.set_nodelay(true).expect("nodelay");
        Conn {
            stream,
            buf: Vec::with_capacity(1 << 16),
        }
    }

    async fn fill(&mut self) {
        let mut chunk = [0u8; 1 << 16];
        let n = self.stream.read(&mut chunk).await.expect("read");
        assert!(n > 0, "connection closed");
        self.buf.extend_from_slice(&chunk[..n]);
    }

    /// `GET path` with the bearer token: the status and the decoded body.
    pub async fn get(&mut self, path: &str, token: &str) -> (u16, Vec<u8>) {
        let req = format!(
            "GET {path} HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {token}\r\n\
             Accept-Encoding: gzip, deflate, br\r\n\r\n"
        );
        self.stream.write_all(req.as_bytes()).await.expect("write");
        let head_end = loop {
            if let Some(i) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            self.fill().await;
        };
        let head = String::from_utf8_lossy(&self.buf[..head_end]).to_ascii_lowercase();
        self.buf.drain(..head_end);
        let status: u16 = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .expect("status");
        let header = |name: &str| {
            head.lines()
                .find_map(|l| l.strip_prefix(name).map(|v| v.trim().to_owned()))
        };
        let mut body = Vec::new();
        if let Some(len) = header("content-length:").and_then(|v| v.parse::<usize>().ok()) {
            while self.buf.len() < len {
                self.fill().await;
            }
            body.extend(self.buf.drain(..len));
        } else if header("transfer-encoding:").is_some_and(|v| v.contains("chunked")) {
            loop {
                let line_end = loop {
                    if let Some(i) = self.buf.windows(2).position(|w| w == b"\r\n") {
                        break i;
                    }
                    self.fill().await;
                };
                let size = usize::from_str_radix(
                    String::from_utf8_lossy(&self.buf[..line_end]).trim(),
                    16,
                )
                .expect("chunk size");
                self.buf.drain(..line_end + 2);
                while self.buf.len() < size + 2 {
                    self.fill().await;
                }
                body.extend(self.buf.drain(..size));
                self.buf.drain(..2);
                if size == 0 {
                    break;
                }
            }
        }
        if header("content-encoding:").is_some_and(|v| v.contains("gzip")) {
            let mut plain = Vec::with_capacity(body.len() * 4);
            flate2::read::GzDecoder::new(body.as_slice())
                .read_to_end(&mut plain)
                .expect("gzip");
            body = plain;
        }
        (status, body)
    }
}
