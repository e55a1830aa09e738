//! Duty records from the stored events: the shift worker ([`shifts`]).

pub mod shifts;

pub use shifts::{ShiftSettings, ShiftWorker};
