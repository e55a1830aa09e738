//! The domain: what cadbridge is about, with no I/O. The event model, where
//! events are shown (route kinds, cards' embeds), the unit roster, alerts,
//! the echo filter, and the health trait the HTTP layer reads.
//!
//! Pure feature models (the duty board and shifts) belong to this layer
//! too: `src/duty/` sits beside it as a top-level module of the same layer
//! (`pub mod duty;` in `lib.rs`), importing only `domain`.

pub mod alert;
pub mod board;
pub mod buttons;
pub mod card;
pub mod catchup;
pub mod echo;
pub mod embed;
pub mod event;
pub mod health;
pub mod ids;
pub mod roster;
pub mod route;
pub mod sonoran;

/// The wall clock in unix milliseconds: the one thing the domain reads from
/// outside, as every stored time is one of these.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}
