//! Settings of the HTTP adapter: [`HttpConfig`] and its parts.

use std::fmt;
use std::net::IpAddr;

use ipnet::{IpNet, Ipv4Net};
use std::str::FromStr;

use crm_core::identity::Secret;
use crm_core::ratelimit::RateLimitConfig;

/// Default largest accepted request body: 1 MiB.
pub const DEFAULT_BODY_LIMIT: usize = 1024 * 1024;

/// Settings of [`crate::router`]. `HttpConfig::default()` is safe for production behind
/// HTTPS: closed sign-up after the first workspace, no CORS origins, no trusted proxies,
/// `Secure` cookies.
#[derive(Clone)]
pub struct HttpConfig {
    /// Largest accepted request body in bytes (default 1 MiB); larger bodies are refused
    /// with `413` / `E4003` before they are read.
    pub body_limit: usize,
    /// Whether `POST /auth/signup` may create workspaces after the first one (default
    /// `false`: only the first workspace of an installation is created by sign-up, see
    /// [`crate::AppState::with_default_workspace`]).
    pub open_signup: bool,
    /// Peers whose forwarding headers (`X-Forwarded-For`, `X-Request-Id`) are believed
    /// (default: none, so the TCP peer address is the client address). Requests must be
    /// served with connect info (`into_make_service_with_connect_info::<SocketAddr>()`) for
    /// any address to be known.
    pub trusted_proxies: Vec<IpNetwork>,
    /// Origins allowed to call the API from a browser (exact match, e.g.
    /// `https://app.example.com`). Empty (the default): no CORS headers at all, so browsers
    /// refuse cross-origin calls.
    pub cors_allowed_origins: Vec<String>,
    /// The refresh-token and CSRF cookies.
    pub cookies: CookieConfig,
    /// Quotas of the rate limiter that [`crate::AppState::new`] builds. The adapter applies
    /// two of them to every request: `user` per authenticated user, `address` per client
    /// address otherwise. The stricter login, refresh and password-reset quotas are applied
    /// by the identity layer (`IdentityConfig::rate_limits`). Ignored by
    /// [`crate::AppState::with_limiter`].
    pub rate_limits: RateLimitConfig,
    /// `max-age` of `Strict-Transport-Security`, in seconds (default one year).
    pub hsts_max_age_secs: u64,
    /// Compress responses (gzip) for clients that accept it (default `true`).
    pub compression: bool,
    /// Serve `GET /metrics` (default `true`). Hosts that expose the API publicly may prefer
    /// to turn it off and scrape [`crate::AppState::metrics_text`] on an internal port.
    pub expose_metrics: bool,
    /// Bearer token `GET /metrics` requires (`Authorization: Bearer <token>`, compared in
    /// constant time); without it or with another one the answer is `401` (`E1001`).
    /// `None` (the default): `/metrics` is public, which suits a loopback-only server or a
    /// router that is not reachable from outside.
    pub metrics_token: Option<Secret>,
    /// Refuse requests that did not arrive over HTTPS (`403`, `E4005`). A request counts as
    /// HTTPS when the host marked it with [`SecureTransport`] (it terminated TLS itself) or
    /// when it comes from a trusted proxy that says `X-Forwarded-Proto: https`. Default
    /// `false`: the host decides (the standalone server turns it on outside local mode when
    /// it does not serve TLS itself).
    pub require_https: bool,
    /// Most requests worked on at once; further ones wait (in arrival order) for a free slot
    /// before they are authenticated and handled. The probes (`/health`, `/ready`) and
    /// `/metrics` never wait, so they stay fast while the API is saturated; nor do the routes
    /// that hash passwords (sign-up, login, password change, reset confirmation, creating
    /// users, setting a user's password), which the password hasher's own bounded queue
    /// limits and which must not hold slots while they wait for it. Each route declares its
    /// policy in the route table. `None` (the default): no limit. Under a load beyond what
    /// the machine can serve, a limit of a few dozen per core keeps the run queue short.
    pub max_concurrent_requests: Option<usize>,
    /// Key signing CSRF tokens. `None` (the default): a key derived from the identity
    /// layer's JWT secret with HKDF-SHA256 and a label of its own
    /// ([`crm_core::identity::Identity::derive_key`]), so CSRF tokens survive restarts and
    /// are accepted by every instance that shares the JWT secret. Set it to sign them with an
    /// independent key instead (every instance must then share that one too).
    pub csrf_secret: Option<Secret>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            body_limit: DEFAULT_BODY_LIMIT,
            open_signup: false,
            trusted_proxies: Vec::new(),
            cors_allowed_origins: Vec::new(),
            cookies: CookieConfig::default(),
            rate_limits: RateLimitConfig::default(),
            hsts_max_age_secs: 31_536_000,
            compression: true,
            expose_metrics: true,
            metrics_token: None,
            require_https: false,
            max_concurrent_requests: None,
            csrf_secret: None,
        }
    }
}

impl fmt::Debug for HttpConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpConfig")
            .field("body_limit", &self.body_limit)
            .field("open_signup", &self.open_signup)
            .field("trusted_proxies", &self.trusted_proxies)
            .field("cors_allowed_origins", &self.cors_allowed_origins)
            .field("cookies", &self.cookies)
            .field("rate_limits", &self.rate_limits)
            .field("hsts_max_age_secs", &self.hsts_max_age_secs)
            .field("compression", &self.compression)
            .field("expose_metrics", &self.expose_metrics)
            .field(
                "metrics_token",
                &self.metrics_token.as_ref().map(|_| "<redacted>"),
            )
            .field("require_https", &self.require_https)
            .field("max_concurrent_requests", &self.max_concurrent_requests)
            .field(
                "csrf_secret",
                &self.csrf_secret.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// A request extension a host inserts when the request arrived over a TLS connection it
/// terminated itself; see [`HttpConfig::require_https`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SecureTransport;

/// The cookies of browser sessions: the refresh token (`HttpOnly; Secure; SameSite=Strict`,
/// scoped to the auth routes) and the CSRF token (readable by scripts, so they can echo it
/// in `X-CSRF-Token`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CookieConfig {
    /// Name of the refresh-token cookie (default `crm_refresh`).
    pub refresh_name: String,
    /// Name of the CSRF cookie (default `crm_csrf`).
    pub csrf_name: String,
    /// `Path` of the refresh-token cookie. `None` (the default): the auth routes' path as the
    /// client sees it, derived per request from where the router is mounted (a router
    /// nested at `/api/v1` scopes it to `/api/v1/auth`).
    pub refresh_path: Option<String>,
    /// `Path` of the CSRF cookie (default `/`, so pages anywhere on the site can read it).
    pub csrf_path: String,
    /// Add `Secure` (default `true`). Turn off only for local development over plain HTTP.
    pub secure: bool,
    /// `Domain` attribute, if any (default none: host-only cookies).
    pub domain: Option<String>,
    /// `Max-Age` in seconds (default 30 days, the core's refresh-token lifetime); `None`
    /// makes them browser-session cookies.
    pub max_age_secs: Option<u64>,
}

impl Default for CookieConfig {
    fn default() -> Self {
        CookieConfig {
            refresh_name: "crm_refresh".into(),
            csrf_name: "crm_csrf".into(),
            refresh_path: None,
            csrf_path: "/".into(),
            secure: true,
            domain: None,
            max_age_secs: Some(30 * 24 * 3600),
        }
    }
}

/// An IP network in CIDR notation (`10.0.0.0/8`, `::1/128`; a bare address is a /32 or
/// /128), used for trusted proxies. An [`ipnet::IpNet`] underneath; an IPv4-mapped IPv6
/// network (`::ffff:10.0.0.0/104`) is kept as the IPv4 network it stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNetwork(IpNet);

impl IpNetwork {
    /// A network from an address and prefix length.
    ///
    /// # Errors
    /// [`InvalidNetwork`] when the prefix is longer than the address.
    pub fn new(addr: IpAddr, prefix: u8) -> Result<Self, InvalidNetwork> {
        let net = IpNet::new(addr, prefix).map_err(|_| InvalidNetwork)?;
        Ok(Self::from(net))
    }

    /// Whether `ip` is inside the network (IPv4-mapped IPv6 addresses count as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.contains(&canonical(ip))
    }

    /// The network as an [`IpNet`].
    pub fn as_ipnet(&self) -> IpNet {
        self.0
    }
}

impl From<IpNet> for IpNetwork {
    fn from(net: IpNet) -> Self {
        match net {
            IpNet::V6(v6) if v6.prefix_len() >= 96 => match v6.addr().to_ipv4_mapped() {
                Some(v4) => IpNetwork(IpNet::V4(
                    Ipv4Net::new(v4, v6.prefix_len() - 96).expect("a prefix of at most 32"),
                )),
                None => IpNetwork(net),
            },
            _ => IpNetwork(net),
        }
    }
}

/// Maps IPv4-mapped IPv6 addresses (`::ffff:1.2.3.4`) to IPv4.
pub(crate) fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

/// A string that is not an IP network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidNetwork;

impl fmt::Display for InvalidNetwork {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not an IP network (expected an address or address/prefix)")
    }
}

impl std::error::Error for InvalidNetwork {}

impl FromStr for IpNetwork {
    type Err = InvalidNetwork;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = addr.trim().parse().map_err(|_| InvalidNetwork)?;
        let prefix = match prefix {
            Some(p) => p.trim().parse().map_err(|_| InvalidNetwork)?,
            None => IpNet::from(addr).prefix_len(),
        };
        IpNetwork::new(addr, prefix)
    }
}

impl fmt::Display for IpNetwork {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks_parse_and_match() {
        let net: IpNetwork = "10.1.0.0/16".parse().unwrap();
        assert!(net.contains("10.1.200.3".parse().unwrap()));
        assert!(!net.contains("10.2.0.1".parse().unwrap()));
        assert!(net.contains("::ffff:10.1.0.9".parse().unwrap()));
        let one: IpNetwork = "127.0.0.1".parse().unwrap();
        assert!(one.contains("127.0.0.1".parse().unwrap()));
        assert!(!one.contains("127.0.0.2".parse().unwrap()));
        let all: IpNetwork = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains("8.8.8.8".parse().unwrap()));
        let v6: IpNetwork = "fd00::/8".parse().unwrap();
        assert!(v6.contains("fd12::1".parse().unwrap()));
        assert!(!v6.contains("fe80::1".parse().unwrap()));
        assert!("10.0.0.0/33".parse::<IpNetwork>().is_err());
        assert!("::1/129".parse::<IpNetwork>().is_err());
        assert_eq!(" 10.1.0.0 / 16 ".parse::<IpNetwork>(), Ok(net));
        assert_eq!(one.to_string(), "127.0.0.1/32");
        // An IPv4-mapped network is the IPv4 network it stands for.
        let mapped: IpNetwork = "::ffff:10.0.0.0/104".parse().unwrap();
        assert_eq!(mapped, "10.0.0.0/8".parse().unwrap());
        assert!(mapped.contains("10.200.0.1".parse().unwrap()));
        assert!(mapped.contains("::ffff:10.200.0.1".parse().unwrap()));
        assert!("nope".parse::<IpNetwork>().is_err());
    }
}
