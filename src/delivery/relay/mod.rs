//! The relay to the game server(s): every accepted event, as the exact bytes
//! received, to each target in order, retried until it arrives.

pub mod answers;
pub mod sink;
mod worker;

pub use sink::{Attempt, HttpSink, RelaySink};
pub use worker::{Clock, Outcome, RelayWorker};

pub use crate::store::outbox::{DeadLetters, TargetStatus};
