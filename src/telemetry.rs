//! Log output: `RUST_LOG` filters, `LOG_FORMAT` picks pretty or JSON lines.

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let _ = match format {
        LogFormat::Pretty => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

/// The format asked for, before the rest of the configuration is read.
pub fn format_from_env() -> LogFormat {
    match std::env::var("LOG_FORMAT").as_deref() {
        Ok("json") => LogFormat::Json,
        _ => LogFormat::Pretty,
    }
}

/// Prometheus metrics: counters and histograms recorded where things
/// happen, gauges (queue depths, gateway) refreshed on each scrape.
pub mod metrics {
    use std::sync::OnceLock;

    use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

    use crate::domain::event::KNOWN_EVENT_TYPES;

    /// Seconds from acceptance to delivery.
    pub const DELIVERY_LATENCY: &str = "cadbridge_delivery_latency_seconds";

    /// The process-wide recorder, installed on first use.
    pub fn handle() -> &'static PrometheusHandle {
        static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
        HANDLE.get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Full(DELIVERY_LATENCY.into()),
                    &[
                        0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
                    ],
                )
                .expect("valid buckets")
                .build_recorder();
            let handle = recorder.handle();
            // Another recorder may already be installed (several apps in one
            // test process share this one).
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
    }

    /// An event type as a label: known types as they are, anything else
    /// `other`, so a caller cannot grow the label set without bound.
    pub fn type_label(event_type: &str) -> &'static str {
        KNOWN_EVENT_TYPES
            .iter()
            .find(|t| **t == event_type)
            .copied()
            .unwrap_or("other")
    }

    /// Counts a pushed body by its outcome: accepted, echo, bad_key,
    /// bad_request, store_unavailable.
    pub fn event_received(event_type: &str, outcome: &'static str) {
        metrics::counter!("cadbridge_events_received_total", "type" => type_label(event_type), "outcome" => outcome)
            .increment(1);
    }

    pub fn delivery_attempt(destination: &str) {
        metrics::counter!("cadbridge_delivery_attempts_total", "destination" => destination.to_string())
            .increment(1);
    }

    pub fn delivery_success(destination: &str, latency_secs: f64) {
        metrics::counter!("cadbridge_delivery_successes_total", "destination" => destination.to_string())
            .increment(1);
        metrics::histogram!(DELIVERY_LATENCY, "destination" => destination.to_string()).record(latency_secs);
    }

    /// Counts a game server's answer to a delivered event; `answer` is one
    /// of a bounded set (see `delivery::relay::answers::label`).
    pub fn relay_answer(destination: &str, answer: &'static str) {
        metrics::counter!("cadbridge_relay_answers_total", "destination" => destination.to_string(), "answer" => answer)
            .increment(1);
    }

    pub fn delivery_failure(destination: &str) {
        metrics::counter!("cadbridge_delivery_failures_total", "destination" => destination.to_string())
            .increment(1);
    }

    /// The text a scrape returns, with the gauges set from `depths` (the
    /// store's `store::gauges::queue_depths` read fresh) at `now`.
    pub fn scrape(
        depths: std::collections::HashMap<String, (i64, Option<i64>)>,
        now: i64,
        gateway_connected: Option<bool>,
    ) -> String {
        for (destination, (count, oldest)) in depths {
            metrics::gauge!("cadbridge_outbox_depth", "destination" => destination.clone()).set(count as f64);
            let age = oldest.map_or(0.0, |t| (now - t).max(0) as f64 / 1000.0);
            metrics::gauge!("cadbridge_outbox_oldest_age_seconds", "destination" => destination).set(age);
        }
        if let Some(connected) = gateway_connected {
            metrics::gauge!("cadbridge_discord_gateway_connected").set(if connected { 1.0 } else { 0.0 });
        }
        handle().render()
    }

    /// Counts one request to Sonoran's API, or one refused before it was
    /// sent, by endpoint (a route id of the doc) and outcome (one of a
    /// bounded set: see `delivery::sonoran::errors::Outcome`).
    pub fn sonoran_request(endpoint: &'static str, outcome: &'static str) {
        metrics::counter!("cadbridge_sonoran_requests_total", "endpoint" => endpoint, "outcome" => outcome)
            .increment(1);
    }

    pub fn dead_letter(destination: &str) {
        metrics::counter!("cadbridge_dead_letters_total", "destination" => destination.to_string())
            .increment(1);
    }
}
