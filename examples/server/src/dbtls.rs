//! TLS to PostgreSQL. The driver's default `sslmode` is `prefer`: TLS if the server offers
//! it, plaintext otherwise — so an attacker in the path can simply not offer it and read
//! the credentials and data. Outside local mode the server therefore never leaves the mode
//! to that default when the database is on another machine:
//!
//! | `DATABASE_URL` | `--database-ca` | effective |
//! |---|---|---|
//! | says `sslmode=...` | any | the URL's mode (the CA added as `sslrootcert` if the URL names none) |
//! | no `sslmode` | set (or `PGSSLROOTCERT`) | `verify-full` against that CA (also on loopback: a CA is an explicit wish) |
//! | no `sslmode`, host is a loopback address, `localhost` or a Unix socket | unset | the driver's `prefer` (nothing travels over a network) |
//! | no `sslmode`, any other host, outside local mode | unset | `require` (encrypted; set a CA to verify the server too) |
//! | no `sslmode`, local mode | unset | the driver's `prefer` |
//!
//! The effective mode and why it was chosen are logged at start — never the URL, which may
//! hold a password. An unreadable CA file, or one without a PEM certificate, stops the server
//! with one line.

use std::net::IpAddr;
use std::path::Path;

use crate::BoxError;

/// The URL to connect with, and the TLS decision to log.
#[derive(Clone, PartialEq, Eq)]
pub struct DbTls {
    /// The connection URL with the effective `sslmode` and `sslrootcert` (secret: it may
    /// hold a password).
    pub url: String,
    /// The effective `sslmode`.
    pub mode: &'static str,
    /// Why (for the log).
    pub reason: &'static str,
}

impl std::fmt::Debug for DbTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DbTls")
            .field("url", &"<redacted>")
            .field("mode", &self.mode)
            .field("reason", &self.reason)
            .finish()
    }
}

const MODES: [&str; 6] = [
    "disable",
    "allow",
    "prefer",
    "require",
    "verify-ca",
    "verify-full",
];

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Some(b) = std::str::from_utf8(&bytes[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The query parameter `name` of `query`, decoded.
fn param(query: &str, name: &str) -> Option<String> {
    query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| decode(k).eq_ignore_ascii_case(name))
        .map(|(_, v)| decode(v))
}

/// Whether the URL's host is on this machine: a loopback address, `localhost`, a Unix
/// socket directory (a host starting with `/`, in the authority or in `?host=`), or none
/// (the driver's default, a local socket or `localhost`).
fn host_is_local(authority: &str, query: &str) -> bool {
    if let Some(h) = param(query, "host") {
        return h.starts_with('/') || h.is_empty() || name_is_local(&h);
    }
    let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if let Some(rest) = hostport.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else {
        hostport.split(':').next().unwrap_or("")
    };
    let host = decode(host);
    host.is_empty() || host.starts_with('/') || name_is_local(&host)
}

fn name_is_local(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The effective connection of `url`: see the [module docs](self). `local` is local mode;
/// `ca` is `--database-ca`, already checked by [`check_ca`].
///
/// # Errors
/// A URL that is not `postgres://` or `postgresql://`, or whose `sslmode` is unknown.
pub fn effective(url: &str, local: bool, ca: Option<&Path>) -> Result<DbTls, BoxError> {
    let rest = url
        .strip_prefix("postgres://")
        .or_else(|| url.strip_prefix("postgresql://"))
        .ok_or("DATABASE_URL must start with postgres:// or postgresql://")?;
    let (before_query, query) = rest.split_once('?').unwrap_or((rest, ""));
    let authority = before_query.split('/').next().unwrap_or("");
    let mut add = Vec::new();
    let ca_param = ca.map(|p| format!("sslrootcert={}", encode(&p.to_string_lossy())));
    let decision = match param(query, "sslmode") {
        Some(mode) => {
            let mode = MODES
                .into_iter()
                .find(|m| m.eq_ignore_ascii_case(&mode))
                .ok_or("DATABASE_URL has an unknown sslmode (expected disable, allow, prefer, require, verify-ca or verify-full)")?;
            if param(query, "sslrootcert").is_none() {
                add.extend(ca_param);
            }
            (mode, "set by DATABASE_URL")
        }
        None if ca.is_some() => {
            add.push("sslmode=verify-full".to_owned());
            if param(query, "sslrootcert").is_none() {
                add.extend(ca_param);
            }
            ("verify-full", "--database-ca is set")
        }
        None if local => ("prefer", "local mode"),
        None if host_is_local(authority, query) => ("prefer", "the database is on this machine"),
        None => {
            add.push("sslmode=require".to_owned());
            (
                "require",
                "outside local mode to another machine (set --database-ca to verify it)",
            )
        }
    };
    let mut out = url.to_owned();
    for (i, p) in add.iter().enumerate() {
        let sep = if i == 0 && query.is_empty() && !url.contains('?') {
            '?'
        } else {
            '&'
        };
        out.push(sep);
        out.push_str(p);
    }
    Ok(DbTls {
        url: out,
        mode: decision.0,
        reason: decision.1,
    })
}

/// Checks that `path` is a readable PEM file with at least one certificate.
///
/// # Errors
/// The file cannot be read or holds no certificate; the message names the path.
pub fn check_ca(path: &Path) -> Result<(), BoxError> {
    std::fs::metadata(path)
        .map_err(|e| format!("cannot read --database-ca {}: {e}", path.display()))?;
    let certs = crate::tls::pem_certificates(path, "--database-ca ")?;
    if certs.is_empty() {
        return Err(format!("no PEM certificate in --database-ca {}", path.display()).into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(url: &str, local: bool, ca: Option<&str>) -> (String, &'static str) {
        let d = effective(url, local, ca.map(Path::new)).unwrap();
        (d.url, d.mode)
    }

    #[test]
    fn remote_databases_get_tls_outside_local_mode() {
        assert_eq!(
            mode("postgres://crm:pw@db.internal/crm", false, None),
            (
                "postgres://crm:pw@db.internal/crm?sslmode=require".into(),
                "require"
            )
        );
        assert_eq!(
            mode(
                "postgres://crm@10.0.0.5:5433/crm?application_name=x",
                false,
                None
            ),
            (
                "postgres://crm@10.0.0.5:5433/crm?application_name=x&sslmode=require".into(),
                "require"
            )
        );
        assert_eq!(
            mode("postgresql://[2001:db8::1]:5432/crm", false, None).1,
            "require"
        );
        // A user name that looks like a local host changes nothing.
        assert_eq!(
            mode("postgres://localhost@db.internal/crm", false, None).1,
            "require"
        );
    }

    #[test]
    fn explicit_modes_local_hosts_and_local_mode_are_kept() {
        let url = "postgres://crm:pw@db.internal/crm?sslmode=disable";
        assert_eq!(mode(url, false, None), (url.into(), "disable"));
        assert_eq!(
            mode(
                "postgres://db.internal/crm?SSLMODE=Verify-Full",
                false,
                None
            )
            .1,
            "verify-full"
        );
        for local in [
            "postgres://postgres@127.0.0.1:5432/crm",
            "postgres://localhost/crm",
            "postgres://[::1]/crm",
            "postgres:///crm",
            "postgres://%2Fvar%2Frun%2Fpostgresql/crm",
            "postgres:///crm?host=/var/run/postgresql",
        ] {
            assert_eq!(
                mode(local, false, None),
                (local.into(), "prefer"),
                "{local}"
            );
        }
        assert_eq!(
            mode("postgres://db.internal/crm?host=10.1.1.1", false, None).1,
            "require"
        );
        assert_eq!(mode("postgres://db.internal/crm", true, None).1, "prefer");
        assert!(effective("postgres://db/crm?sslmode=maybe", false, None).is_err());
        assert!(effective("mysql://db/crm", false, None).is_err());
    }

    #[test]
    fn a_ca_means_verify_full() {
        assert_eq!(
            mode(
                "postgres://db.internal/crm",
                false,
                Some("/etc/ca dir/ca.pem")
            ),
            (
                "postgres://db.internal/crm?sslmode=verify-full&sslrootcert=/etc/ca%20dir/ca.pem"
                    .into(),
                "verify-full"
            )
        );
        assert_eq!(
            mode("postgres://127.0.0.1/crm", true, Some("/ca.pem")).1,
            "verify-full"
        );
        assert_eq!(
            mode(
                "postgres://db/crm?sslmode=verify-ca",
                false,
                Some("/ca.pem")
            ),
            (
                "postgres://db/crm?sslmode=verify-ca&sslrootcert=/ca.pem".into(),
                "verify-ca"
            )
        );
        assert_eq!(
            mode(
                "postgres://db/crm?sslrootcert=/mine.pem",
                false,
                Some("/ca.pem")
            )
            .0,
            "postgres://db/crm?sslrootcert=/mine.pem&sslmode=verify-full"
        );
    }

    #[test]
    fn the_url_never_prints() {
        let d = effective("postgres://crm:hunter2@db/crm", false, None).unwrap();
        assert!(!format!("{d:?}").contains("hunter2"));
    }
}
