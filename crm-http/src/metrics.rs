//! Prometheus metrics of the HTTP adapter, kept with the `prometheus-client` crate in a
//! [`Registry`] that the [`AppState`](crate::AppState) owns — the adapter installs no global
//! recorder, so two routers in one process count apart — and rendered in the Prometheus
//! text format (version 0.0.4) by `GET /metrics`.
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `crm_http_requests_total` | counter | `method`, `route`, `status` |
//! | `crm_http_errors_total` | counter | `route`, `code` (`E2001`, ...) |
//! | `crm_http_request_duration_seconds` | histogram | `route` |
//! | `crm_http_logins_total` | counter | `result` (`success`, `failure`) |
//! | `crm_http_rate_limited_total` | counter | `route` |
//! | `crm_http_requests_in_flight` | gauge | |
//! | `crm_http_forbidden_total` | counter | `route` |
//!
//! Hosts add their own series (process, connections, store) to the same registry with
//! [`AppState::with_registry`](crate::AppState::with_registry): metrics they update, or a
//! [`Collector`](prometheus_client::collector::Collector) read on each scrape.
//!
//! `route` is the route template (`/contacts/{id}`), never the concrete path, so the number
//! of series stays bounded; requests that match no route are labelled `unmatched`.

use std::collections::HashSet;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use prometheus_client::encoding::{EncodeLabelSet, EncodeMetric, MetricEncoder};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

/// Upper bounds of the latency histogram buckets, in seconds.
pub const LATENCY_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Label values are shared strings, interned once each (see [`Metrics::intern`]), so that
/// looking a series up builds its key without allocating.
type Label = Arc<str>;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: Label,
    route: Label,
    status: u16,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorLabels {
    route: Label,
    code: Label,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: Label,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LoginLabels {
    result: &'static str,
}

/// A metric whose `# HELP` and `# TYPE` lines are rendered even before its first series
/// (`prometheus-client` leaves empty families out), so that dashboards and alerting rules
/// can name every series from the start.
#[derive(Debug)]
struct Declared<M>(M);

impl<M: EncodeMetric> EncodeMetric for Declared<M> {
    fn encode(&self, encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        self.0.encode(encoder)
    }

    fn metric_type(&self) -> MetricType {
        self.0.metric_type()
    }

    fn is_empty(&self) -> bool {
        false
    }
}

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

/// The adapter's metrics. One per [`crate::AppState`], registered in its registry.
pub struct Metrics {
    /// Every label value seen so far (route templates, methods, error codes): a bounded set.
    labels: RwLock<HashSet<Label>>,
    requests: Family<RequestLabels, Counter>,
    errors: Family<ErrorLabels, Counter>,
    latency: Family<RouteLabels, Histogram, fn() -> Histogram>,
    logins: Family<LoginLabels, Counter>,
    rate_limited: Family<RouteLabels, Counter>,
    in_flight: Gauge,
    forbidden: Family<RouteLabels, Counter>,
}

/// One request being worked on, counted in `crm_http_requests_in_flight` until dropped
/// (also when the client goes away and the request's future is dropped).
pub struct InFlight<'a>(&'a Gauge);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    /// The adapter's series, registered in `registry` (in the order above).
    pub fn new(registry: &mut Registry) -> Self {
        let metrics = Metrics {
            labels: RwLock::default(),
            requests: Family::default(),
            errors: Family::default(),
            latency: Family::new_with_constructor(latency_histogram),
            logins: Family::default(),
            rate_limited: Family::default(),
            in_flight: Gauge::default(),
            forbidden: Family::default(),
        };
        // Both results are shown from the start, at 0.
        for result in ["success", "failure"] {
            drop(metrics.logins.get_or_create(&LoginLabels { result }));
        }
        // `prometheus-client` adds the `_total` suffix of counters, the unit and the final
        // full stop of each help text.
        registry.register(
            "crm_http_requests",
            "HTTP requests answered",
            Declared(metrics.requests.clone()),
        );
        registry.register(
            "crm_http_errors",
            "Error responses by route and error code",
            Declared(metrics.errors.clone()),
        );
        registry.register_with_unit(
            "crm_http_request_duration",
            "Time from request to response headers",
            Unit::Seconds,
            Declared(metrics.latency.clone()),
        );
        registry.register(
            "crm_http_logins",
            "Login attempts by result",
            Declared(metrics.logins.clone()),
        );
        registry.register(
            "crm_http_rate_limited",
            "Requests refused by a rate limit",
            Declared(metrics.rate_limited.clone()),
        );
        registry.register(
            "crm_http_requests_in_flight",
            "Requests being worked on",
            Declared(metrics.in_flight.clone()),
        );
        registry.register(
            "crm_http_forbidden",
            "Requests refused by the permission matrix",
            Declared(metrics.forbidden.clone()),
        );
        metrics
    }

    /// The shared copy of a label value; the one allocation happens the first time a value
    /// is seen.
    fn intern(&self, value: &str) -> Label {
        let known = self
            .labels
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(value)
            .cloned();
        known.unwrap_or_else(|| {
            let mut labels = self
                .labels
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some(v) = labels.get(value) {
                return v.clone();
            }
            let v: Label = Arc::from(value);
            labels.insert(v.clone());
            v
        })
    }

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
        let route = self.intern(route);
        self.requests
            .get_or_create(&RequestLabels {
                method: self.intern(method),
                route: route.clone(),
                status,
            })
            .inc();
        let by_route = RouteLabels { route };
        if let Some(code) = code {
            self.errors
                .get_or_create(&ErrorLabels {
                    route: by_route.route.clone(),
                    code: self.intern(code),
                })
                .inc();
            match code {
                "E4001" => {
                    self.rate_limited.get_or_create(&by_route).inc();
                }
                "E1002" => {
                    self.forbidden.get_or_create(&by_route).inc();
                }
                _ => {}
            }
        }
        self.latency
            .get_or_create(&by_route)
            .observe(elapsed.as_secs_f64());
    }

    /// Counts a request as in flight until the answer is dropped.
    pub fn start_request(&self) -> InFlight<'_> {
        self.in_flight.inc();
        InFlight(&self.in_flight)
    }

    /// Counts one login attempt.
    pub fn record_login(&self, success: bool) {
        let result = if success { "success" } else { "failure" };
        self.logins.get_or_create(&LoginLabels { result }).inc();
    }
}

/// `registry` in the Prometheus text exposition format (version 0.0.4).
pub fn render(registry: &Registry) -> String {
    let mut out = String::new();
    // Writing into a `String` cannot fail; a collector that fails leaves its series out.
    if prometheus_client::encoding::prometheus_text::encode(&mut out, registry).is_err() {
        tracing::warn!("a metrics collector failed; its series are incomplete");
    }
    out
}

/// The `Content-Type` of [`render`]'s text.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_cumulative_buckets() {
        let mut registry = Registry::default();
        let m = Metrics::new(&mut registry);
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
        assert!(render(&registry).contains("crm_http_requests_in_flight 1\n"));
        drop(busy);
        let text = render(&registry);
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
        assert!(text.contains(
            "crm_http_request_duration_seconds_bucket{route=\"/contacts\",le=\"+Inf\"} 2"
        ));
        assert!(text.contains("crm_http_request_duration_seconds_count{route=\"/contacts\"} 2"));
        assert!(text.contains("crm_http_logins_total{result=\"failure\"} 1"));
        assert!(text.contains("crm_http_logins_total{result=\"success\"} 0"));
        for (name, kind) in [
            ("crm_http_requests_total", "counter"),
            ("crm_http_errors_total", "counter"),
            ("crm_http_request_duration_seconds", "histogram"),
            ("crm_http_logins_total", "counter"),
            ("crm_http_rate_limited_total", "counter"),
            ("crm_http_requests_in_flight", "gauge"),
            ("crm_http_forbidden_total", "counter"),
        ] {
            assert!(text.contains(&format!("# TYPE {name} {kind}\n")), "{text}");
        }
        assert!(text.contains("# HELP crm_http_requests_total HTTP requests answered.\n"));
    }

    #[test]
    fn label_values_are_escaped_and_interned() {
        let mut registry = Registry::default();
        let m = Metrics::new(&mut registry);
        m.record_request("/a\"b\\c\nd", "GET", 404, None, Duration::ZERO);
        let text = render(&registry);
        assert!(text.contains(r#"route="/a\"b\\c\nd""#), "{text}");
        assert!(Arc::ptr_eq(&m.intern("/x"), &m.intern("/x")));
    }
}
