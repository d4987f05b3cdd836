//! The figures table at the end of `import`: one column per backend, one row per figure that
//! any backend has, as Markdown (ready for `bench/import.md`).

use serde_json::Value;

use super::Figures;

/// Figure key and label, in the order shown.
const ROWS: &[(&str, &str)] = &[
    ("rows", "customers rows"),
    ("file_mb", "file MB"),
    ("enqueue_s", "enqueue (upload) s"),
    ("import_e2e_s", "enqueue → Processed s"),
    ("import_e2e_rows_s", "enqueue → Processed rows/s"),
    ("import_processing_s", "processing (started → finished) s"),
    ("import_processing_rows_s", "processing rows/s"),
    ("import_state", "final state"),
    ("reference_s", "reference load s"),
    ("reference_rows_s", "reference rows/s"),
    ("ratio_e2e", "ratio ferry e2e / reference"),
    ("ratio_processing", "ratio ferry processing / reference"),
    ("floor_s", "floor load (ferry's table shape) s"),
    ("floor_rows_s", "floor rows/s"),
    ("ratio_floor_processing", "ratio ferry processing / floor"),
    ("rss_idle_after_import_mib", "RSS idle after the import MiB"),
    ("rss_start_mib", "RSS after start MiB"),
    ("rss_refdata_mib", "RSS after the reference data MiB"),
    ("peak_rss_import_mib", "peak RSS after import MiB (aim < 256)"),
    ("rss_polled_max_mib", "highest RSS polled during import MiB"),
    ("messages", "one-row messages"),
    ("messages_enqueue_per_s", "enqueue messages/s"),
    ("messages_e2e_s", "enqueue → all final s"),
    ("messages_e2e_per_s", "end-to-end messages/s"),
    ("messages_processed", "messages Processed"),
    ("messages_other", "messages in other states"),
    ("aon_rows", "all-or-nothing import rows"),
    ("aon_e2e_s", "all-or-nothing enqueue → final s"),
    ("aon_state", "all-or-nothing final state"),
    ("aon_writer_base_p50_ms", "writer alone p50 ms"),
    ("aon_writer_base_p99_ms", "writer alone p99 ms"),
    ("aon_writer_base_max_ms", "writer alone max ms"),
    ("aon_writer_requests", "writer requests during the import"),
    ("aon_writer_errors", "writer errors during the import"),
    ("aon_writer_p50_ms", "writer during the import p50 ms"),
    ("aon_writer_p99_ms", "writer during the import p99 ms"),
    ("aon_writer_max_ms", "writer during the import max ms"),
    ("aon_writer_longest_wait_ms", "writer's longest wait ms"),
    ("peak_rss_end_mib", "peak RSS at the end MiB"),
    ("log_problems", "server log WARN/ERROR lines"),
];

fn cell(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => "–".to_string(),
        Some(Value::Number(n)) if n.is_f64() => {
            let v = n.as_f64().unwrap_or(f64::NAN);
            if v.abs() < 10.0 { format!("{v:.3}") } else { thousands(&format!("{v:.1}")) }
        }
        Some(Value::Number(n)) => thousands(&n.to_string()),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// `1234567.5` → `1,234,567.5`.
fn thousands(text: &str) -> String {
    let (int, frac) = text.split_once('.').map_or((text, None), |(i, f)| (i, Some(f)));
    let (sign, digits) = int.strip_prefix('-').map_or(("", int), |d| ("-", d));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    match frac {
        Some(f) => format!("{sign}{out}.{f}"),
        None => format!("{sign}{out}"),
    }
}

/// Prints the table of every backend's figures.
pub fn print(runs: &[Figures]) {
    if runs.is_empty() {
        return;
    }
    let names: Vec<String> = runs.iter().map(|r| cell(r.get("backend"))).collect();
    println!("| | {} |", names.join(" | "));
    println!("| --- |{}", " --- |".repeat(runs.len()));
    for (key, label) in ROWS {
        if runs.iter().all(|r| matches!(r.get(*key), None | Some(Value::Null))) {
            continue;
        }
        let cells: Vec<String> = runs.iter().map(|r| cell(r.get(*key))).collect();
        println!("| {label} | {} |", cells.join(" | "));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn cells_group_thousands_and_show_missing_as_a_dash() {
        assert_eq!(thousands("1234567"), "1,234,567");
        assert_eq!(thousands("-1234.5"), "-1,234.5");
        assert_eq!(thousands("123"), "123");
        assert_eq!(cell(Some(&json!(30363.2))), "30,363.2");
        assert_eq!(cell(Some(&json!(0.15234))), "0.152");
        assert_eq!(cell(Some(&json!(1000000))), "1,000,000");
        assert_eq!(cell(None), "–");
        assert_eq!(cell(Some(&json!("Processed"))), "Processed");
    }
}
