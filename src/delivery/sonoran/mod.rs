//! Sonoran CAD's REST API v2: the client ([`client::SonoranApi`]), with a
//! budget per endpoint below the documented per-minute limits, what can go
//! wrong ([`errors::SonoranError`]) and the shapes of requests and answers
//! ([`types`]). Only called when `SONORAN_API=on`.

pub mod catchup;
pub mod client;
pub mod errors;
pub mod types;

pub use client::{BudgetLeft, Options, SonoranApi};
pub use errors::SonoranError;
