//! The alert worker: reports alerts, a summary per burst, to the Discord
//! log channel when there is one, and always to the log.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::routing::Routing;
use crate::domain::alert::{self as alerts, Alert};
use crate::domain::card::Card;
use crate::domain::route::RouteKind;
use crate::store::{Store, cards};

/// Reports alerts, a summary per burst: to the Discord log channel when
/// there is one, and always to the log.
pub async fn run(
    mut rx: tokio::sync::mpsc::Receiver<Alert>,
    store: Store,
    routing: Routing,
    discord_on: bool,
    cards_ready: Arc<tokio::sync::Notify>,
    stop: CancellationToken,
) {
    /// Bad-key reports reach Discord at most this often (an attacker must
    /// not be able to flood the log channel); they are always logged.
    const BAD_KEY_QUIET: Duration = Duration::from_secs(600);
    let mut last_bad_key_post: Option<tokio::time::Instant> = None;
    let mut burst = Vec::new();
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            n = rx.recv_many(&mut burst, 256) => if n == 0 { break },
        }
        // Let the rest of a burst arrive before summarising it.
        tokio::select! {
            _ = stop.cancelled() => {}
            _ = tokio::time::sleep(Duration::from_secs(2)) => {}
        }
        while let Ok(alert) = rx.try_recv() {
            burst.push(alert);
        }
        let (bad_keys, dead): (Vec<Alert>, Vec<Alert>) =
            burst.drain(..).partition(|a| matches!(a, Alert::BadKey { .. }));
        let mut lines = alerts::summarize(&dead);
        let bad_key_lines = alerts::summarize(&bad_keys);
        for line in lines.iter().chain(&bad_key_lines) {
            tracing::warn!(alert = %line, "cadbridge alert");
        }
        if !bad_key_lines.is_empty() && last_bad_key_post.is_none_or(|t| t.elapsed() >= BAD_KEY_QUIET) {
            last_bad_key_post = Some(tokio::time::Instant::now());
            lines.extend(bad_key_lines);
        }
        let Some(channel) = routing
            .channel(RouteKind::Log)
            .filter(|_| discord_on && !lines.is_empty())
        else {
            continue;
        };
        let card = Card {
            kind: RouteKind::Log,
            key: None,
            embed: alerts::embed(&lines),
            mentions: Vec::new(),
            // An alert needs an operator: it notifies (no role is pinged;
            // whoever follows the log channel hears it). Bursts are already
            // one summary and bad-key reports are throttled above.
            notify: true,
            state: None,
        };
        match cards::queue(&store, card, channel).await {
            Ok(()) => cards_ready.notify_one(),
            Err(e) => tracing::error!(error = %e, "could not queue an alert for Discord"),
        }
    }
}
