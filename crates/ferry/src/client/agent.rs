//! `ferry agent --config agent.toml`: runs the scheduling agent (`ferry-agent`) until SIGTERM
//! or Ctrl-C, against the environment `agent.toml` (or `--env`) names. Prints
//! `agent metrics on http://ADDR` on stdout when it serves `/metrics` and `/healthz`.

use ferry_agent::AgentConfig;
use ferry_client::Retry;

use super::{CommandResult, Done, Exit, code, exit_of};
use crate::cli::GlobalArgs;

pub(crate) async fn run(global: &GlobalArgs, env: &[(String, String)]) -> CommandResult {
    let Some(path) = &global.config else {
        return Err(Exit::new(code::USAGE, "name the agent's file: ferry agent --config agent.toml"));
    };
    let config = AgentConfig::load(path).map_err(|e| Exit::new(code::USAGE, e.to_string()))?;
    let name = global.env.as_deref().or(config.environment.as_deref());
    let connection =
        ferry_client::open(config.client_config.as_deref(), name, env, Retry::default()).map_err(exit_of)?;
    let mut signals =
        crate::server::ShutdownSignals::install().map_err(|e| Exit::new(code::FAILED, format!("{e:#}")))?;
    let on_listen = |addr: std::net::SocketAddr| {
        let _ = crate::print(&format!("agent metrics on http://{addr}\n"));
    };
    let shutdown = async move {
        let signal = signals.recv().await;
        tracing::info!("{signal} received");
    };
    ferry_agent::run(config, connection, shutdown, on_listen).await.map_err(|e| Exit::new(code::FAILED, e))?;
    Ok(Done::ok(String::new()))
}
