//! What `/proc` (Linux) tells about the ferry server and the machine: the CPU seconds the server
//! process used and how busy the whole machine was (other work included), to tell where a
//! step's time went; the server's resident memory (`VmRSS`) and its peak (`VmHWM`); the CPU
//! model, memory, kernel and load average for the header. Elsewhere, or without a server pid,
//! the figures are simply absent.

use serde_json::{Value, json};
use std::time::Instant;

/// Clock ticks per second of `/proc` times (`sysconf(_SC_CLK_TCK)`, 100 on Linux).
const TICKS_PER_SECOND: f64 = 100.0;

/// A reading of the counters at one instant.
pub struct CpuMark {
    at: Instant,
    process_ticks: Option<u64>,
    /// (busy, total) jiffies of all CPUs.
    machine: Option<(u64, u64)>,
}

/// CPU use between two marks.
pub struct CpuUse {
    pub wall_secs: f64,
    /// CPU seconds of the process.
    pub process_secs: Option<f64>,
    /// Average number of busy CPUs of the machine.
    pub machine_busy_cpus: Option<f64>,
}

fn process_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

fn machine_jiffies() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let values: Vec<u64> = stat.lines().next()?.split_whitespace().skip(1).filter_map(|v| v.parse().ok()).collect();
    let total: u64 = values.iter().take(8).sum();
    let idle = values.get(3)? + values.get(4).unwrap_or(&0);
    Some((total - idle, total))
}

impl CpuMark {
    pub fn now(pid: Option<u32>) -> CpuMark {
        CpuMark { at: Instant::now(), process_ticks: pid.and_then(process_ticks), machine: machine_jiffies() }
    }

    /// CPU use from `self` until `later`.
    pub fn until(&self, later: &CpuMark) -> CpuUse {
        let process_secs = match (self.process_ticks, later.process_ticks) {
            (Some(a), Some(b)) => Some(b.saturating_sub(a) as f64 / TICKS_PER_SECOND),
            _ => None,
        };
        let machine_busy_cpus = match (self.machine, later.machine) {
            (Some((busy_a, total_a)), Some((busy_b, total_b))) if total_b > total_a => {
                let cpus = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
                Some((busy_b - busy_a) as f64 / (total_b - total_a) as f64 * cpus)
            }
            _ => None,
        };
        CpuUse { wall_secs: (later.at - self.at).as_secs_f64(), process_secs, machine_busy_cpus }
    }
}

impl CpuUse {
    /// E.g. `ferry 12.3 CPU-s (0.66 of a CPU), machine 1.8 of 2 CPUs busy`.
    pub fn describe(&self) -> String {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        let process =
            self.process_secs.map(|s| format!("ferry {s:.1} CPU-s ({:.2} of a CPU)", s / self.wall_secs.max(1e-9)));
        let machine = self.machine_busy_cpus.map(|b| format!("machine {b:.1} of {cpus} CPUs busy"));
        [process, machine].into_iter().flatten().collect::<Vec<_>>().join(", ")
    }

    pub fn to_json(&self) -> Value {
        json!({
            "wall_seconds": self.wall_secs, "ferry_cpu_seconds": self.process_secs,
            "machine_busy_cpus": self.machine_busy_cpus,
        })
    }
}

/// A `kB` field of `/proc/<pid>/status` (`VmRSS`, `VmHWM`) in MiB.
pub fn status_mib(pid: u32, field: &str) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status_field_mib(&status, field)
}

fn status_field_mib(status: &str, field: &str) -> Option<f64> {
    let line = status.lines().find(|l| l.split(':').next() == Some(field))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// A MiB figure with one decimal, `n/a` when absent.
pub fn mib(v: Option<f64>) -> String {
    v.map_or_else(|| "n/a".to_string(), |v| format!("{v:.1}"))
}

/// `2 CPUs (AMD EPYC …), 23.5 GiB memory, Linux 6.1.0`.
pub fn machine() -> String {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map_or("unknown", |(_, m)| m.trim());
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| status_field_mib(&m, "MemTotal"))
        .map_or_else(|| "unknown".to_string(), |mib| format!("{:.1} GiB", mib / 1024.0));
    let read = |p: &str| std::fs::read_to_string(p).map(|s| s.trim().to_string()).unwrap_or_default();
    let kernel = format!("{} {}", read("/proc/sys/kernel/ostype"), read("/proc/sys/kernel/osrelease"));
    format!("{cpus} CPUs ({model}), {memory} memory, {}", kernel.trim())
}

/// The three load averages.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_fields_in_mib() {
        let status = "Name:\tferry\nVmHWM:\t  204800 kB\nVmRSS:\t  102400 kB\n";
        assert_eq!(status_field_mib(status, "VmRSS"), Some(100.0));
        assert_eq!(status_field_mib(status, "VmHWM"), Some(200.0));
        assert_eq!(status_field_mib(status, "VmSwap"), None);
        assert_eq!(mib(Some(1.26)), "1.3");
        assert_eq!(mib(None), "n/a");
    }
}
