//! Process-wide health read from `/proc` (Linux); zeros elsewhere.

use std::time::Instant;

/// Clock ticks per second of `/proc/self/stat` CPU times (100 on Linux).
const TICKS_PER_SEC: f64 = 100.0;

/// Remembers the previous CPU reading to turn totals into a rate.
#[derive(Debug)]
pub struct ProcessSampler {
    last_cpu_ticks: u64,
    last_at: Instant,
}

/// One reading.
#[derive(Debug, Default, Clone, Copy)]
pub struct ProcessReading {
    /// Resident set size.
    pub rss_bytes: u64,
    /// OS threads.
    pub threads: u64,
    /// Open file descriptors.
    pub open_fds: u64,
    /// CPU since the previous reading, 100 = one core.
    pub cpu_percent: f64,
}

impl Default for ProcessSampler {
    fn default() -> Self {
        Self {
            last_cpu_ticks: cpu_ticks().unwrap_or(0),
            last_at: Instant::now(),
        }
    }
}

impl ProcessSampler {
    /// Reads the current values.
    pub fn sample(&mut self) -> ProcessReading {
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        };
        let open_fds = std::fs::read_dir("/proc/self/fd")
            .map(|d| d.count() as u64)
            .unwrap_or(0);
        let ticks = cpu_ticks().unwrap_or(self.last_cpu_ticks);
        let secs = self.last_at.elapsed().as_secs_f64();
        let cpu_percent = if secs > 0.0 {
            (ticks.saturating_sub(self.last_cpu_ticks)) as f64 / TICKS_PER_SEC / secs * 100.0
        } else {
            0.0
        };
        self.last_cpu_ticks = ticks;
        self.last_at = Instant::now();
        ProcessReading {
            rss_bytes: field("VmRSS:") * 1024,
            threads: field("Threads:"),
            open_fds,
            cpu_percent,
        }
    }
}

/// The calling thread's kernel id (Linux: the `/proc/thread-self` link
/// names it), or `None` where there is no such file.
pub(crate) fn current_tid() -> Option<u32> {
    let link = std::fs::read_link("/proc/thread-self").ok()?;
    link.file_name()?.to_str()?.parse().ok()
}

/// CPU seconds one of this process's threads has used so far; `None`
/// once it has exited.
pub(crate) fn thread_cpu_secs(tid: u32) -> Option<f64> {
    let ticks =
        stat_cpu_ticks(&std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).ok()?)?;
    Some(ticks as f64 / TICKS_PER_SEC)
}

/// utime + stime of this process, in clock ticks.
fn cpu_ticks() -> Option<u64> {
    stat_cpu_ticks(&std::fs::read_to_string("/proc/self/stat").ok()?)
}

/// utime + stime from a `/proc/…/stat` line, in clock ticks.
fn stat_cpu_ticks(stat: &str) -> Option<u64> {
    // The command name may contain spaces; fields resume after its ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line, i.e. 11 and
    // 12 after the state field that follows ')'.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let mut s = ProcessSampler::default();
        let r = s.sample();
        if cfg!(target_os = "linux") {
            assert!(r.rss_bytes > 0);
            assert!(r.threads >= 1);
            assert!(r.open_fds >= 3);
        }
        assert!(r.cpu_percent >= 0.0);
    }
}
