//! Where an event is shown: each kind has its own Discord channel.

/// The kinds of event that each have their own Discord channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RouteKind {
    Emergency911,
    Dispatch,
    Units,
    Panic,
    Records,
    Other,
    Log,
}

impl RouteKind {
    pub const ALL: [RouteKind; 7] = [
        RouteKind::Emergency911,
        RouteKind::Dispatch,
        RouteKind::Units,
        RouteKind::Panic,
        RouteKind::Records,
        RouteKind::Other,
        RouteKind::Log,
    ];

    /// The environment variable that sets this kind's channel.
    pub fn env_var(self) -> &'static str {
        match self {
            RouteKind::Emergency911 => "DISCORD_CHANNEL_911",
            RouteKind::Dispatch => "DISCORD_CHANNEL_DISPATCH",
            RouteKind::Units => "DISCORD_CHANNEL_UNITS",
            RouteKind::Panic => "DISCORD_CHANNEL_PANIC",
            RouteKind::Records => "DISCORD_CHANNEL_RECORDS",
            RouteKind::Other => "DISCORD_CHANNEL_OTHER",
            RouteKind::Log => "DISCORD_CHANNEL_LOG",
        }
    }

    /// The short name used in settings and slash commands.
    pub fn name(self) -> &'static str {
        match self {
            RouteKind::Emergency911 => "911",
            RouteKind::Dispatch => "dispatch",
            RouteKind::Units => "units",
            RouteKind::Panic => "panic",
            RouteKind::Records => "records",
            RouteKind::Other => "other",
            RouteKind::Log => "log",
        }
    }
}
