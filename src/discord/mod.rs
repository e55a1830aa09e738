//! The Discord side: events become cards (embeds) in the right channels,
//! posted or edited by a paced sender; a serenity/poise bot runs the slash
//! commands beside it.

pub mod bot;
pub mod cards;
pub mod commands;
pub mod embed;
pub mod gateway;
pub mod pacer;
pub mod render;
pub mod rest;
pub mod roster;
pub mod routing;
pub mod sender;
pub mod worker;
