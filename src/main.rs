use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;

use cadbridge::app::Application;
use cadbridge::cli::{self, Cli, Command};
use cadbridge::config::{Config, EXAMPLE_KEY_WARNING};

/// Errors end the program with one line on stderr (`error: …: cause`),
/// never a backtrace, and a non-zero exit status.
#[tokio::main]
async fn main() -> ExitCode {
    let _ = dotenvy::dotenv();
    cadbridge::telemetry::init(cadbridge::telemetry::format_from_env());
    match run(Cli::parse().command.unwrap_or(Command::Serve)).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Serve => {
            let config = Config::from_env().context("the configuration is not valid")?;
            if config.uses_example_key() {
                tracing::warn!("{EXAMPLE_KEY_WARNING}");
            }
            let app = Application::build(config).await?;
            app.run_until_stopped(cadbridge::shutdown_signal()).await
        }
        Command::SendEvent(args) => cli::send_event(args).await,
        Command::Check => cli::check(),
    }
}
