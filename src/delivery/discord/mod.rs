//! The Discord side of delivery: events become cards (embeds) in the right
//! channels, posted or edited by a paced sender.

pub mod alerts;
pub mod board;
pub mod digest;
pub mod health;
pub mod pacer;
pub mod render;
pub mod rest;
pub mod roles;
pub mod routing;
pub mod sender;
pub mod sink;
pub mod worker;
