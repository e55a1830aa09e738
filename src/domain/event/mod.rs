//! The Sonoran CAD push-event model: pure code, no I/O.
//!
//! [`Envelope`] is the part the listener checks before anything is stored
//! (a JSON object with a string `type`, and the `key`); [`CadEvent`] is the
//! typed view of a stored body that Discord rendering works from.

mod envelope;
mod model;

pub use envelope::{Envelope, EnvelopeError};
pub use model::*;
