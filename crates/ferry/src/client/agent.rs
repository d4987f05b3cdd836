//! `ferry agent --config agent.toml`: runs the scheduling agent (`ferry-agent`) until SIGTERM
//! or Ctrl-C.

use super::{CommandResult, Exit, code};
use crate::cli::GlobalArgs;

pub(crate) async fn run(_global: &GlobalArgs, _env: &[(String, String)]) -> CommandResult {
    Err(Exit::new(code::USAGE, "the agent is not built yet"))
}
