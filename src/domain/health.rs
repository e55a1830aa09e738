//! What the health endpoints need to know about Discord, without knowing
//! the bot: the delivery layer's gateway state implements it.

/// The Discord side's state as `/readyz` and `/metrics` show it.
pub trait DiscordHealth: Send + Sync {
    /// Connected, commands registered, sending.
    fn is_ready(&self) -> bool;
    /// The gateway is connected.
    fn is_connected(&self) -> bool;
    /// The gateway's state, as a line.
    fn describe(&self) -> String;
    /// The slash commands' state, as a line.
    fn describe_commands(&self) -> String;
    /// Whether sending is paused, as a line.
    fn describe_sending(&self) -> String;
}
