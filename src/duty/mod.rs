//! Duty records, pure: shifts built from CAD unit events ([`shift`]),
//! periods in a timezone ([`period`]), reports and the CSV export
//! ([`report`]), and the weekly digest with its chart ([`digest`]).
//!
//! No I/O here: the wiring feeds events and times in, stores what comes
//! out, and posts the text and PNG.

pub mod digest;
pub mod period;
pub mod report;
pub mod shift;

pub use digest::{Digest, DigestAt, DigestAtError, Due};
pub use period::{Period, PeriodError, Span};
pub use report::{GroupBy, Total};
pub use shift::{Change, EndReason, Ms, OpenedBy, Segment, Shift, Tracker};
