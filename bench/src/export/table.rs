//! The figures table at the end of `export`: per backend the export beside the reference dump,
//! the package's size and the server's memory, against the aim. Reads the same JSON the run
//! writes to `export-<backend>.json`.

use serde_json::Value;

/// A number of the summary at `path` (keys), NaN when absent.
fn number(summary: &Value, path: &[&str]) -> f64 {
    path.iter().fold(summary, |v, key| &v[*key]).as_f64().unwrap_or(f64::NAN)
}

/// Prints one row per backend.
pub fn print(runs: &[Value], aim: f64) {
    println!(
        "{:<9} {:>9} {:>8} {:>10} {:>8} {:>8} {:>8} {:>7} {:>10} {:>6}  aim: ferry >= {aim} x reference",
        "export", "rows", "ferry s", "rows/s", "pkg MB", "RSS MiB", "peak", "ref s", "ref rows/s", "ratio"
    );
    for run in runs {
        let ratio = number(run, &["ratio"]);
        let verdict = match ratio {
            r if r.is_nan() => "-",
            r if r >= aim => "met",
            _ => "NOT met",
        };
        println!(
            "{:<9} {:>9} {:>8.2} {:>10.0} {:>8.1} {:>8.1} {:>8.1} {:>7.2} {:>10.0} {:>6.2}  {verdict}",
            run["backend"].as_str().unwrap_or("?"),
            run["export"]["rows"].as_u64().unwrap_or(0),
            number(run, &["export", "seconds"]),
            number(run, &["export", "rows_per_second"]),
            number(run, &["package", "bytes"]) / 1e6,
            number(run, &["memory", "rss_before_mib"]),
            number(run, &["memory", "peak_after_mib"]),
            number(run, &["reference", "seconds"]),
            number(run, &["reference", "rows_per_second"]),
            ratio,
        );
    }
    println!("  ferry s: ExportToPackage called -> execution finished (Succeeded); pkg MB: the zip as downloaded;");
    println!("  RSS MiB: the server's VmRSS just before the call; peak: its VmHWM right after the export;");
    println!("  ref: the database's own client dumping the same table to a CSV file.");
}
