//! Prometheus metrics of the HTTP adapter, kept in process and rendered in the text
//! exposition format by `GET /metrics`.
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `crm_http_requests_total` | counter | `method`, `route`, `status` |
//! | `crm_http_errors_total` | counter | `route`, `code` (`E2001`, ...) |
//! | `crm_http_request_duration_seconds` | histogram | `route` |
//! | `crm_http_logins_total` | counter | `result` (`success`, `failure`) |
//! | `crm_http_rate_limited_total` | counter | `route` |
//! | `crm_http_forbidden_total` | counter | `route` |
//! | `crm_http_requests_in_flight` | gauge | |
//!
//! Hosts add their own series (process, connections, store) with
//! [`crate::AppState::add_metrics_collector`].
//!
//! `route` is the route template (`/contacts/{id}`), never the concrete path, so the number
//! of series stays bounded; requests that match no route are labelled `unmatched`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the latency histogram buckets, in seconds.
pub const LATENCY_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

#[derive(Default)]
struct Histogram {
    buckets: [u64; LATENCY_BUCKETS.len()],
    count: u64,
    sum: f64,
}

/// The series, nested by label (route, then method or code, then status) so that
/// recording a request on a series that exists looks it up by `&str` and allocates nothing.
#[derive(Default)]
struct Tables {
    requests: BTreeMap<String, BTreeMap<String, BTreeMap<u16, u64>>>,
    errors: BTreeMap<String, BTreeMap<String, u64>>,
    latency: BTreeMap<String, Histogram>,
    rate_limited: BTreeMap<String, u64>,
    forbidden: BTreeMap<String, u64>,
}

/// The entry of `key`, created (the one allocation) only the first time.
fn entry<'a, V: Default>(map: &'a mut BTreeMap<String, V>, key: &str) -> &'a mut V {
    if !map.contains_key(key) {
        map.insert(key.to_owned(), V::default());
    }
    map.get_mut(key).expect("just inserted")
}

/// The adapter's metrics. One per [`crate::AppState`].
#[derive(Default)]
pub struct Metrics {
    tables: Mutex<Tables>,
    login_success: AtomicU64,
    login_failure: AtomicU64,
    in_flight: AtomicI64,
}

/// One request being worked on, counted in `crm_http_requests_in_flight` until dropped
/// (also when the client goes away and the request's future is dropped).
pub struct InFlight<'a>(&'a AtomicI64);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    /// Records one finished request: its route template, method, status, error code (if it
    /// failed with one) and duration.
    pub fn record_request(
        &self,
        route: &str,
        method: &str,
        status: u16,
        code: Option<&str>,
        elapsed: Duration,
    ) {
        let secs = elapsed.as_secs_f64();
        let Ok(mut t) = self.tables.lock() else {
            return;
        };
        *entry(entry(&mut t.requests, route), method)
            .entry(status)
            .or_default() += 1;
        if let Some(code) = code {
            *entry(entry(&mut t.errors, route), code) += 1;
            match code {
                "E4001" => *entry(&mut t.rate_limited, route) += 1,
                "E1002" => *entry(&mut t.forbidden, route) += 1,
                _ => {}
            }
        }
        let h = entry(&mut t.latency, route);
        h.count += 1;
        h.sum += secs;
        for (i, bound) in LATENCY_BUCKETS.iter().enumerate() {
            if secs <= *bound {
                h.buckets[i] += 1;
            }
        }
    }

    /// Counts a request as in flight until the answer is dropped.
    pub fn start_request(&self) -> InFlight<'_> {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(&self.in_flight)
    }

    /// Counts one login attempt.
    pub fn record_login(&self, success: bool) {
        let counter = if success {
            &self.login_success
        } else {
            &self.login_failure
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// The metrics in the Prometheus text exposition format (version 0.0.4).
    pub fn render(&self) -> String {
        let mut out = String::new();
        let Ok(t) = self.tables.lock() else {
            return out;
        };
        out.push_str("# HELP crm_http_requests_total HTTP requests answered.\n");
        out.push_str("# TYPE crm_http_requests_total counter\n");
        for (route, methods) in &t.requests {
            for (method, statuses) in methods {
                for (status, n) in statuses {
                    let _ = writeln!(
                        out,
                        "crm_http_requests_total{{method=\"{}\",route=\"{}\",status=\"{status}\"}} {n}",
                        escape(method),
                        escape(route)
                    );
                }
            }
        }
        out.push_str("# HELP crm_http_errors_total Error responses by route and error code.\n");
        out.push_str("# TYPE crm_http_errors_total counter\n");
        for (route, codes) in &t.errors {
            for (code, n) in codes {
                let _ = writeln!(
                    out,
                    "crm_http_errors_total{{route=\"{}\",code=\"{}\"}} {n}",
                    escape(route),
                    escape(code)
                );
            }
        }
        out.push_str(
            "# HELP crm_http_request_duration_seconds Time from request to response headers.\n",
        );
        out.push_str("# TYPE crm_http_request_duration_seconds histogram\n");
        for (route, h) in &t.latency {
            let route = escape(route);
            for (i, bound) in LATENCY_BUCKETS.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "crm_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"{bound}\"}} {}",
                    h.buckets[i]
                );
            }
            let _ = writeln!(
                out,
                "crm_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(
                out,
                "crm_http_request_duration_seconds_sum{{route=\"{route}\"}} {}",
                h.sum
            );
            let _ = writeln!(
                out,
                "crm_http_request_duration_seconds_count{{route=\"{route}\"}} {}",
                h.count
            );
        }
        out.push_str("# HELP crm_http_logins_total Login attempts by result.\n");
        out.push_str("# TYPE crm_http_logins_total counter\n");
        let _ = writeln!(
            out,
            "crm_http_logins_total{{result=\"success\"}} {}",
            self.login_success.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "crm_http_logins_total{{result=\"failure\"}} {}",
            self.login_failure.load(Ordering::Relaxed)
        );
        out.push_str("# HELP crm_http_rate_limited_total Requests refused by a rate limit.\n");
        out.push_str("# TYPE crm_http_rate_limited_total counter\n");
        for (route, n) in &t.rate_limited {
            let _ = writeln!(
                out,
                "crm_http_rate_limited_total{{route=\"{}\"}} {n}",
                escape(route)
            );
        }
        out.push_str("# HELP crm_http_requests_in_flight Requests being worked on.\n");
        out.push_str("# TYPE crm_http_requests_in_flight gauge\n");
        let _ = writeln!(
            out,
            "crm_http_requests_in_flight {}",
            self.in_flight.load(Ordering::Relaxed).max(0)
        );
        out.push_str(
            "# HELP crm_http_forbidden_total Requests refused by the permission matrix.\n",
        );
        out.push_str("# TYPE crm_http_forbidden_total counter\n");
        for (route, n) in &t.forbidden {
            let _ = writeln!(
                out,
                "crm_http_forbidden_total{{route=\"{}\"}} {n}",
                escape(route)
            );
        }
        out
    }
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_cumulative_buckets() {
        let m = Metrics::default();
        m.record_request("/contacts", "GET", 200, None, Duration::from_millis(3));
        m.record_request(
            "/contacts",
            "GET",
            429,
            Some("E4001"),
            Duration::from_micros(100),
        );
        m.record_login(false);
        let busy = m.start_request();
        assert!(m.render().contains("crm_http_requests_in_flight 1\n"));
        drop(busy);
        let text = m.render();
        assert!(text.contains("crm_http_requests_in_flight 0\n"));
        assert!(text.contains(
            "crm_http_requests_total{method=\"GET\",route=\"/contacts\",status=\"200\"} 1"
        ));
        assert!(text.contains("crm_http_errors_total{route=\"/contacts\",code=\"E4001\"} 1"));
        assert!(text.contains("crm_http_rate_limited_total{route=\"/contacts\"} 1"));
        // 0.1 ms is under every bound; 3 ms only from the 5 ms bucket on.
        assert!(text.contains(
            "crm_http_request_duration_seconds_bucket{route=\"/contacts\",le=\"0.0025\"} 1"
        ));
        assert!(text.contains(
            "crm_http_request_duration_seconds_bucket{route=\"/contacts\",le=\"0.005\"} 2"
        ));
        assert!(text.contains("crm_http_logins_total{result=\"failure\"} 1"));
    }
}
