//! The figures table at the end of `replication`: the initial copy beside the reference load,
//! and the delta latencies, per target, each against the aim. Reads the same JSON the
//! run writes to `replication-<target>.json`.

use serde_json::Value;

/// Aim of issues 4 and 10: ferry's initial copy at least this share of the reference load rate.
const COPY_RATIO_AIM: f64 = 0.5;
/// Aim of issue 10: the server's RSS grows by less than this during the copy (MiB).
const RSS_GROWTH_AIM_MIB: f64 = 100.0;
/// Aims of issue 10: delta latency p50 and p99 under these many milliseconds…
const P50_AIM_MS: f64 = 50.0;
const P99_AIM_MS: f64 = 250.0;
/// …at (nearly) the paced rate.
const ACHIEVED_AIM: f64 = 0.95;

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or(f64::NAN)
}

/// Prints the table of the figures of every target.
pub fn print(runs: &[Value]) {
    println!(
        "initial copy   {:>9} {:>9} {:>12} {:>9} {:>12} {:>7} {:>8}  aim: ferry >= {COPY_RATIO_AIM} x reference, RSS +< {RSS_GROWTH_AIM_MIB:.0} MiB",
        "rows", "ferry s", "ferry rows/s", "ref s", "ref rows/s", "ratio", "RSS +MiB"
    );
    for run in runs {
        let target = run["target"].as_str().unwrap_or("?");
        let (copy, reference) = (&run["initial"], &run["reference"]);
        if copy.is_null() {
            println!("{target:<14} (no initial copy figures)");
            continue;
        }
        let ratio = f(&run["ratio_copy_to_reference"]);
        let growth = f(&copy["rss_growth_mib"]);
        let verdict = if ratio.is_nan() {
            "-"
        } else if ratio >= COPY_RATIO_AIM && growth < RSS_GROWTH_AIM_MIB {
            "met"
        } else {
            "NOT met"
        };
        println!(
            "{target:<14} {:>9} {:>9.1} {:>12.0} {:>9.1} {:>12.0} {:>7.2} {:>8.1}  {verdict}",
            copy["rows_copied"].as_i64().unwrap_or(0),
            f(&copy["seconds"]),
            f(&copy["rows_per_second"]),
            f(&reference["seconds"]),
            f(&reference["rows_per_second"]),
            ratio,
            growth,
        );
    }
    println!();
    println!(
        "delta latency  {:>9} {:>9} {:>9} {:>8} {:>8} {:>8} {:>8}  aim: p50 < {P50_AIM_MS:.0} ms, p99 < {P99_AIM_MS:.0} ms at >= {ACHIEVED_AIM} x paced",
        "paced/s", "achieved", "changes", "p50 ms", "p99 ms", "max ms", "unseen"
    );
    for run in runs {
        let target = run["target"].as_str().unwrap_or("?");
        let delta = &run["delta"];
        if delta.is_null() {
            println!("{target:<14} (no delta figures)");
            continue;
        }
        for (label, key, unseen) in [
            ("", "visible_ms", delta["not_seen"].as_u64().unwrap_or(0).to_string()),
            (" sink", "sink_modified_ms", "-".into()),
        ] {
            let l = &delta[key];
            let (p50, p99) = (f(&l["p50"]), f(&l["p99"]));
            let paced = run["delta_rate"].as_f64().unwrap_or(f64::NAN);
            let achieved = f(&delta["achieved_changes_per_second"]);
            let verdict = if p50 < P50_AIM_MS && p99 < P99_AIM_MS && achieved >= ACHIEVED_AIM * paced {
                "met"
            } else {
                "NOT met"
            };
            println!(
                "{:<14} {:>9} {:>9.1} {:>9} {:>8.1} {:>8.1} {:>8.1} {:>8}  {verdict}",
                format!("{target}{label}"),
                run["delta_rate"].as_u64().unwrap_or(0),
                f(&delta["achieved_changes_per_second"]),
                l["count"].as_u64().unwrap_or(0),
                p50,
                p99,
                f(&l["max"]),
                unseen,
            );
        }
    }
    println!("  {:<12} first seen by polling the target by Id - PATCH returned (monotonic clock)", "<target>");
    println!(
        "  {:<12} SinkModifiedOn (ferry's stamp when it built the batch) - PATCH returned (wall clock)",
        "<target> sink"
    );
}
