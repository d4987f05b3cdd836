//! `ferry import-package` and `ferry export-package`: the data management package API as RIS's
//! Import and Export jobs use it. An import takes a zip, or a folder of data files wrapped into a
//! package first (the manifest from the project, read through the admin API when the app may);
//! then GetAzureWriteUrl → block upload → ImportFromPackage → wait → the rejected rows. An export
//! runs ExportToPackage → wait → GetExportedPackageUrl → download (→ unzip).

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use ferry_client::{Outcome, PackageExport, PackageImport, ServerKind, package};
use serde_json::json;

use super::args::{ExportPackageArgs, ImportPackageArgs};
use super::{CommandResult, Done, Exit, code, company, connect, exit_of, exit_of_outcome, json_text, progress};
use crate::cli::GlobalArgs;

pub(crate) async fn import(args: ImportPackageArgs, global: &GlobalArgs, env: &[(String, String)]) -> CommandResult {
    let connection = connect(global, env)?;
    let temp = tempfile_dir()?;
    let zip = if args.source.is_dir() {
        // The project tells each file's entity, format and order; an app without the admin
        // role (or Dynamics) gets them from the file names.
        let project = match connection.environment().server {
            ServerKind::Ferry => connection.project(&args.project).await.ok(),
            ServerKind::Dynamics => None,
        };
        let entries = package::plan(&args.source, project.as_ref()).map_err(exit_of)?;
        let zip = temp.join(format!("{}.zip", ferry_client::safe_file_name(&args.project)));
        package::write(&args.project, &entries, &zip).map_err(exit_of)?;
        zip
    } else if args.source.is_file() {
        args.source.clone()
    } else {
        return Err(Exit::new(code::USAGE, format!("{} is neither a file nor a folder", args.source.display())));
    };
    let request = PackageImport {
        project: args.project.clone(),
        company: company(args.company, &connection),
        execution_id: args.execution_id.clone(),
        execute: !args.no_execute,
    };
    let result = connection.import_package(&zip, &request, progress()).await;
    let _ = std::fs::remove_dir_all(&temp);
    let execution_id = result.map_err(exit_of)?;
    let mut shown = json!({ "execution_id": execution_id, "project": args.project });
    if args.no_wait {
        let output = if args.json { json_text(&shown) } else { format!("{execution_id}\n") };
        return Ok(Done::ok(output));
    }
    let deadline = Instant::now() + Duration::from_secs(args.timeout);
    let (status, outcome) =
        connection.wait_execution(&execution_id, deadline, Duration::from_millis(500)).await.map_err(exit_of)?;
    shown["status"] = json!(status);
    let mut out = format!("execution {execution_id}: {status}\n");
    if outcome == Outcome::RecordErrors && connection.environment().server == ServerKind::Ferry {
        let query = ferry_client::ErrorQuery { limit: 100, ..Default::default() };
        let rows = connection.message_errors(&execution_id, &query).await.map_err(exit_of)?;
        let _ = write!(out, "{}", super::messages::error_table(&rows));
        shown["errors"] = json!(rows);
    }
    let exit = match outcome {
        Outcome::Pending => Some(Exit::new(
            code::TIMED_OUT,
            format!("execution {execution_id} is still {status} after {} s", args.timeout),
        )),
        outcome => exit_of_outcome(outcome, &format!("execution {execution_id}")),
    };
    Ok(Done { output: if args.json { json_text(&shown) } else { out }, exit })
}

pub(crate) async fn export(args: ExportPackageArgs, global: &GlobalArgs, env: &[(String, String)]) -> CommandResult {
    let connection = connect(global, env)?;
    let request = PackageExport {
        project: args.project.clone(),
        company: company(args.company, &connection),
        execution_id: args.execution_id.clone(),
        package_name: None,
    };
    let execution_id = connection.export_to_package(&request).await.map_err(exit_of)?;
    let deadline = Instant::now() + Duration::from_secs(args.timeout);
    let (status, outcome) =
        connection.wait_execution(&execution_id, deadline, Duration::from_millis(500)).await.map_err(exit_of)?;
    let mut shown = json!({ "execution_id": execution_id, "project": args.project, "status": status });
    match outcome {
        Outcome::Pending => {
            return Err(Exit::new(
                code::TIMED_OUT,
                format!("execution {execution_id} is still {status} after {} s", args.timeout),
            ));
        }
        Outcome::Failed => return Err(Exit::new(code::FAILED, format!("execution {execution_id} {status}"))),
        Outcome::Succeeded | Outcome::RecordErrors => {}
    }
    let name =
        format!("{}-{}.zip", ferry_client::safe_file_name(&args.project), ferry_client::safe_file_name(&execution_id));
    let dest = args.out.join(name);
    let bar = progress();
    if !connection.download_exported_package(&execution_id, &dest, deadline, bar.as_ref()).await.map_err(exit_of)? {
        return Err(Exit::new(code::TIMED_OUT, format!("the package of execution {execution_id} did not appear")));
    }
    let mut path = dest.clone();
    if args.unzip {
        let target = dest.with_extension("");
        let files = ferry_client::files::unzip(&dest, &target).map_err(exit_of)?;
        let _ = std::fs::remove_file(&dest);
        shown["files"] = json!(files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>());
        path = target;
    }
    shown["path"] = json!(path.display().to_string());
    let exit = exit_of_outcome(outcome, &format!("execution {execution_id}"));
    let output =
        if args.json { json_text(&shown) } else { format!("execution {execution_id}: {status}\n{}\n", path.display()) };
    Ok(Done { output, exit })
}

/// A private temporary directory for a wrapped package.
fn tempfile_dir() -> Result<std::path::PathBuf, Exit> {
    let dir = std::env::temp_dir().join(format!("ferry-package-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir)
        .map_err(|e| Exit::new(code::FAILED, format!("cannot create {}: {e}", dir.display())))?;
    Ok(dir)
}
