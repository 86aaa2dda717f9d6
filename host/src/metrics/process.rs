//! The standard `process_*` metrics (resident memory, open fds, start time, CPU),
//! read from `/proc/self` at each scrape. prometheus-client has no process
//! collector of its own, and `metrics-process` records into the `metrics`
//! facade rather than a prometheus-client registry; reading six numbers from
//! `/proc` takes a few lines.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

/// What `/proc/self` says now.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ProcessStats {
    /// `process_resident_memory_bytes`.
    pub resident_bytes: Option<u64>,
    /// `process_virtual_memory_bytes`.
    pub virtual_bytes: Option<u64>,
    /// `process_open_fds`.
    pub open_fds: Option<u64>,
    /// `process_max_fds`.
    pub max_fds: Option<u64>,
    /// `process_start_time_seconds` (unix).
    pub start_time_seconds: Option<f64>,
    /// `process_cpu_seconds_total`.
    pub cpu_seconds: Option<f64>,
}

/// Clock ticks per second for `/proc/<pid>/stat` times: 100 on every Linux
/// architecture the gateway builds for (USER_HZ is fixed by the kernel ABI).
const TICKS_PER_SECOND: f64 = 100.0;
/// Page size for `statm`: 4 KiB on x86_64 and the common aarch64 kernels.
const PAGE_SIZE: u64 = 4096;

/// Read the numbers from `/proc/self`; each one absent when it cannot be read (not Linux).
pub fn read() -> ProcessStats {
    let mut s = ProcessStats::default();
    if let Ok(status) = std::fs::read_to_string("/proc/self/status") {
        for line in status.lines() {
            let kb = |rest: &str| {
                rest.split_whitespace()
                    .next()
                    .and_then(|v| v.parse::<u64>().ok())
                    .map(|v| v * 1024)
            };
            if let Some(rest) = line.strip_prefix("VmRSS:") {
                s.resident_bytes = kb(rest);
            } else if let Some(rest) = line.strip_prefix("VmSize:") {
                s.virtual_bytes = kb(rest);
            }
        }
    } else if let Ok(statm) = std::fs::read_to_string("/proc/self/statm") {
        let mut f = statm.split_whitespace();
        s.virtual_bytes = f
            .next()
            .and_then(|v| v.parse::<u64>().ok())
            .map(|p| p * PAGE_SIZE);
        s.resident_bytes = f
            .next()
            .and_then(|v| v.parse::<u64>().ok())
            .map(|p| p * PAGE_SIZE);
    }
    if let Ok(dir) = std::fs::read_dir("/proc/self/fd") {
        s.open_fds = Some(dir.count() as u64);
    }
    if let Ok(limits) = std::fs::read_to_string("/proc/self/limits") {
        s.max_fds = limits
            .lines()
            .find(|l| l.starts_with("Max open files"))
            .and_then(|l| l.split_whitespace().nth(3))
            .and_then(|v| v.parse().ok());
    }
    if let Ok(stat) = std::fs::read_to_string("/proc/self/stat") {
        // Fields after the parenthesised command name (which may hold spaces).
        if let Some(rest) = stat.rfind(')').map(|i| &stat[i + 2..]) {
            let f: Vec<&str> = rest.split_whitespace().collect();
            // utime, stime are fields 14 and 15 of stat; starttime is 22 (1-based, counting pid, comm).
            let num = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok());
            if let (Some(u), Some(sys)) = (num(11), num(12)) {
                s.cpu_seconds = Some((u + sys) / TICKS_PER_SECOND);
            }
            if let (Some(start), Some(boot)) = (num(19), boot_time()) {
                s.start_time_seconds = Some(boot + start / TICKS_PER_SECOND);
            }
        }
    }
    s
}

fn boot_time() -> Option<f64> {
    std::fs::read_to_string("/proc/stat")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())
}

/// Encodes [`read`] at each scrape.
#[derive(Debug)]
pub struct ProcessCollector {
    /// Start time read once (it never changes).
    start_time: Option<f64>,
}

impl ProcessCollector {
    /// Read the start time now.
    pub fn new() -> Self {
        ProcessCollector {
            start_time: read().start_time_seconds,
        }
    }
}

impl Default for ProcessCollector {
    fn default() -> Self {
        Self::new()
    }
}

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let s = read();
        let gauges: [(&str, &str, Option<f64>); 5] = [
            (
                "process_resident_memory_bytes",
                "Resident memory size in bytes",
                s.resident_bytes.map(|v| v as f64),
            ),
            (
                "process_virtual_memory_bytes",
                "Virtual memory size in bytes",
                s.virtual_bytes.map(|v| v as f64),
            ),
            (
                "process_open_fds",
                "Number of open file descriptors",
                s.open_fds.map(|v| v as f64),
            ),
            (
                "process_max_fds",
                "Maximum number of open file descriptors",
                s.max_fds.map(|v| v as f64),
            ),
            (
                "process_start_time_seconds",
                "Start time of the process since unix epoch in seconds",
                self.start_time,
            ),
        ];
        for (name, help, value) in gauges {
            if let Some(v) = value {
                let g = ConstGauge::new(v);
                let e = encoder.encode_descriptor(name, help, None, g.metric_type())?;
                g.encode(e)?;
            }
        }
        if let Some(cpu) = s.cpu_seconds {
            let c = ConstCounter::new(cpu);
            let e = encoder.encode_descriptor(
                "process_cpu_seconds",
                "Total user and system CPU time spent in seconds",
                None,
                c.metric_type(),
            )?;
            c.encode(e)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn proc_self_is_read_on_linux() {
        let s = super::read();
        if cfg!(target_os = "linux") {
            assert!(s.resident_bytes.unwrap() > 0);
            assert!(s.open_fds.unwrap() >= 3);
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs_f64();
            let start = s.start_time_seconds.unwrap();
            assert!(
                start <= now + 1.0 && start > now - 3600.0,
                "{start} vs {now}"
            );
        }
    }
}
