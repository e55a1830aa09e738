//! When to try a failed delivery again. Retries are data: a schedule from
//! the configuration, with jitter, and the peer's `Retry-After` honoured.

use std::time::Duration;

/// The longest a peer's `Retry-After` can hold a queue back.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(300);

/// The delay before retry number `failures` (1 after the first failure):
/// the schedule's entry, the last one repeating, plus up to 10% jitter so
/// many queues do not retry in lockstep.
pub fn backoff(schedule: &[Duration], failures: u32) -> Duration {
    let index = (failures.max(1) as usize - 1).min(schedule.len().saturating_sub(1));
    let base = schedule.get(index).copied().unwrap_or(Duration::from_secs(1));
    let jitter_ms = (base.as_millis() as u64 / 10).max(1);
    base + Duration::from_millis(fastrand::u64(0..jitter_ms))
}

/// Parses `Retry-After` in seconds (the form Discord and most servers use),
/// clamped to [`MAX_RETRY_AFTER`].
pub fn retry_after(value: Option<&str>) -> Option<Duration> {
    let secs: f64 = value?.trim().parse().ok()?;
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs).min(MAX_RETRY_AFTER))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_the_schedule_then_repeats_its_last_step() {
        let schedule = [Duration::from_secs(1), Duration::from_secs(5)];
        let within =
            |d: Duration, base: u64| d >= Duration::from_secs(base) && d < Duration::from_millis(base * 1100);
        assert!(within(backoff(&schedule, 1), 1));
        assert!(within(backoff(&schedule, 2), 5));
        assert!(within(backoff(&schedule, 9), 5));
    }

    #[test]
    fn retry_after_is_read_in_seconds_and_clamped() {
        assert_eq!(retry_after(Some("2")), Some(Duration::from_secs(2)));
        assert_eq!(retry_after(Some("0.5")), Some(Duration::from_millis(500)));
        assert_eq!(retry_after(Some("99999")), Some(MAX_RETRY_AFTER));
        assert_eq!(retry_after(Some("soon")), None);
        assert_eq!(retry_after(None), None);
    }
}
