//! The standard `process_*` metrics (resident memory, open descriptors, CPU
//! seconds, start time), read from `/proc/self` at scrape time.
//!
//! Hand-written rather than a crate: the `prometheus` crate's process
//! collector pulls in `procfs` and a second metrics library, and no crate in
//! Cargo.lock provides it for `prometheus-client`; the four values are a few
//! lines of `/proc` parsing. On systems without `/proc` the metrics are
//! simply absent.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

/// Values of one scrape; `None` where `/proc` could not be read.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ProcessSample {
    /// Resident set size in bytes.
    pub resident_bytes: Option<i64>,
    /// Open file descriptors.
    pub open_fds: Option<i64>,
    /// User plus system CPU time in seconds.
    pub cpu_seconds: Option<f64>,
    /// When the process started, Unix seconds.
    pub start_time: Option<f64>,
}

/// Clock ticks per second of `/proc/<pid>/stat` times. 100 on every Linux
/// architecture the gateway targets (USER_HZ is fixed in the kernel ABI);
/// asking `sysconf` would need `libc` for one constant.
const TICKS_PER_SECOND: f64 = 100.0;

/// Page size for `statm`; 4 KiB on the targeted architectures.
const PAGE_BYTES: i64 = 4096;

impl ProcessSample {
    /// Reads `/proc/self`.
    pub fn read() -> Self {
        let stat = std::fs::read_to_string("/proc/self/stat").ok();
        let boot = std::fs::read_to_string("/proc/stat")
            .ok()
            .and_then(|s| boot_time(&s));
        let (cpu_seconds, start_ticks) = stat.as_deref().map(parse_stat).unwrap_or((None, None));
        Self {
            resident_bytes: std::fs::read_to_string("/proc/self/statm")
                .ok()
                .and_then(|s| parse_statm(&s)),
            open_fds: std::fs::read_dir("/proc/self/fd")
                .ok()
                .map(|d| d.count() as i64),
            cpu_seconds,
            start_time: match (boot, start_ticks) {
                (Some(b), Some(t)) => Some(b as f64 + t / TICKS_PER_SECOND),
                _ => None,
            },
        }
    }
}

/// Resident pages (second field of `statm`) in bytes.
fn parse_statm(s: &str) -> Option<i64> {
    let pages: i64 = s.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages.saturating_mul(PAGE_BYTES))
}

/// CPU seconds (utime + stime) and start time in ticks since boot from
/// `/proc/self/stat`. The command name in brackets may hold spaces, so
/// fields are counted after its closing bracket.
fn parse_stat(s: &str) -> (Option<f64>, Option<f64>) {
    let Some(rest) = s.rfind(')').map(|i| &s[i + 1..]) else {
        return (None, None);
    };
    // After the bracket: field 3 (state) is index 0; utime is field 14,
    // stime 15, starttime 22.
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let num = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok());
    let cpu = match (num(11), num(12)) {
        (Some(u), Some(s)) => Some((u + s) / TICKS_PER_SECOND),
        _ => None,
    };
    (cpu, num(19))
}

/// The `btime` line of `/proc/stat`.
fn boot_time(s: &str) -> Option<i64> {
    s.lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())
}

/// Registers on the root registry (no prefix), so the names are the ones
/// every dashboard knows.
#[derive(Debug, Default)]
pub struct ProcessCollector;

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let s = ProcessSample::read();
        if let Some(v) = s.cpu_seconds {
            let c = ConstCounter::new(v);
            c.encode(encoder.encode_descriptor(
                "process_cpu_seconds",
                "Total user and system CPU time spent in seconds",
                None,
                c.metric_type(),
            )?)?;
        }
        let gauges = [
            (
                "process_resident_memory_bytes",
                "Resident memory size in bytes",
                s.resident_bytes.map(|v| v as f64),
            ),
            (
                "process_open_fds",
                "Number of open file descriptors",
                s.open_fds.map(|v| v as f64),
            ),
            (
                "process_start_time_seconds",
                "Start time of the process since the Unix epoch in seconds",
                s.start_time,
            ),
        ];
        for (name, help, value) in gauges {
            if let Some(v) = value {
                let g = ConstGauge::new(v);
                g.encode(encoder.encode_descriptor(name, help, None, g.metric_type())?)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_spaces_in_the_name() {
        let s = "1234 (my (odd) name) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 8 0 4200 1000 500";
        let (cpu, start) = parse_stat(s);
        assert_eq!(cpu, Some(3.0));
        assert_eq!(start, Some(4200.0));
    }

    #[test]
    fn parses_statm_and_btime() {
        assert_eq!(parse_statm("1000 250 100 1 0 300 0"), Some(250 * 4096));
        assert_eq!(parse_statm(""), None);
        assert_eq!(
            boot_time("cpu 1 2 3\nbtime 1700000000\n"),
            Some(1_700_000_000)
        );
        assert_eq!(parse_stat("garbage"), (None, None));
    }

    #[test]
    fn reads_this_process() {
        let s = ProcessSample::read();
        if std::path::Path::new("/proc/self/stat").exists() {
            assert!(s.resident_bytes.unwrap_or(0) > 0);
            assert!(s.open_fds.unwrap_or(0) > 0);
            assert!(s.start_time.unwrap_or(0.0) > 1_600_000_000.0);
        }
    }
}
