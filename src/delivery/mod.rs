//! Delivery: workers that take what the store queued and deliver it. Each
//! makes progress one [`worker_loop::Step`] at a time; retries follow the
//! schedules in [`retry`].

pub mod discord;
pub mod duty;
pub mod relay;
pub mod retry;
pub mod sonoran;
pub mod worker_loop;
