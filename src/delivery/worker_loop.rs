//! The loop every delivery worker runs (relay, Discord render, Discord
//! send): one step at a time and, between steps, a wait that ends on a wake
//! (new work was committed), at the step's own deadline, or on shutdown.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// When to take the next step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// At once: there is more to do.
    Now,
    /// After this long, or sooner if woken.
    After(Duration),
}

/// A worker that makes progress one step at a time.
pub trait Step: Send {
    fn step(&mut self) -> impl Future<Output = Next> + Send;
}

/// Runs `worker` until `stop` is cancelled; a step in progress is finished first.
pub async fn run(mut worker: impl Step, wake: Arc<Notify>, stop: CancellationToken) {
    loop {
        // Registered before the step looks for work, so a commit between the
        // look and the wait is not missed.
        let notified = wake.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let wait = match worker.step().await {
            Next::Now => continue,
            Next::After(wait) => wait,
        };
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = &mut notified => {}
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Counts its steps; asks for the next one at once until `busy` runs out.
    struct Counter {
        steps: Arc<std::sync::atomic::AtomicUsize>,
        busy: usize,
    }

    impl Step for Counter {
        async fn step(&mut self) -> Next {
            self.steps.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            if self.busy > 0 {
                self.busy -= 1;
                Next::Now
            } else {
                Next::After(Duration::from_secs(3600))
            }
        }
    }

    /// Lets every task that can run do so. With the clock paused and
    /// nothing else to do, the runtime moves time to the next timer, so a
    /// sleep shorter than every timer ahead only lets the worker run.
    async fn settle() {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }

    #[tokio::test(start_paused = true)]
    async fn steps_while_busy_then_waits_for_a_wake_or_its_deadline_and_stops_when_told() {
        let steps = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (wake, stop) = (Arc::new(Notify::new()), CancellationToken::new());
        let worker = Counter {
            steps: steps.clone(),
            busy: 3,
        };
        let task = tokio::spawn(run(worker, wake.clone(), stop.clone()));
        let count = || steps.load(std::sync::atomic::Ordering::SeqCst);

        settle().await;
        assert_eq!(count(), 4, "three busy steps and one that found nothing");
        settle().await;
        assert_eq!(count(), 4, "then it waits");
        wake.notify_waiters();
        settle().await;
        assert_eq!(count(), 5, "a wake takes one more step");
        tokio::time::advance(Duration::from_secs(3599)).await;
        settle().await;
        assert_eq!(count(), 5, "not before the step's deadline");
        tokio::time::advance(Duration::from_secs(1)).await;
        settle().await;
        assert_eq!(count(), 6, "at the deadline, one more step");
        stop.cancel();
        tokio::time::timeout(Duration::from_secs(1), task)
            .await
            .expect("stops when told")
            .unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn a_wake_during_a_step_is_not_lost() {
        /// Wakes itself during its first step, as a commit landing between
        /// the look for work and the wait would.
        struct WakesItself {
            wake: Arc<Notify>,
            steps: Arc<std::sync::atomic::AtomicUsize>,
        }
        impl Step for WakesItself {
            async fn step(&mut self) -> Next {
                if self.steps.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
                    self.wake.notify_waiters();
                }
                Next::After(Duration::from_secs(3600))
            }
        }
        let steps = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (wake, stop) = (Arc::new(Notify::new()), CancellationToken::new());
        let worker = WakesItself {
            wake: wake.clone(),
            steps: steps.clone(),
        };
        let task = tokio::spawn(run(worker, wake, stop.clone()));
        settle().await;
        assert_eq!(
            steps.load(std::sync::atomic::Ordering::SeqCst),
            2,
            "the wake sent during the first step starts a second"
        );
        stop.cancel();
        task.await.unwrap();
    }
}
