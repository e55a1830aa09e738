use anyhow::Context;
use clap::Parser;

use cadbridge::app::Application;
use cadbridge::cli::{self, Cli, Command};
use cadbridge::config::Config;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _ = dotenvy::dotenv();
    cadbridge::telemetry::init(cadbridge::telemetry::format_from_env());
    match Cli::parse().command.unwrap_or(Command::Serve) {
        Command::Serve => {
            let config = Config::from_env().context("the configuration is not valid")?;
            let app = Application::build(config).await?;
            app.run_until_stopped(cadbridge::shutdown_signal()).await
        }
        Command::SendEvent(args) => cli::send_event(args).await,
        Command::Check => cli::check(),
    }
}
