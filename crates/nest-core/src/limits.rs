//! Checks of this machine's limits against a plan, before any load.
//!
//! Each VU keeps its own keep-alive connection (one open file), and each call in flight needs a fiber stack (two
//! memory maps). Hitting these limits mid-run shows up as confusing connection errors, so they are checked up front:
//! the open-file limit is raised to its hard limit when that is enough, and otherwise the message says how to raise it.

use crate::error::Error;

/// Open files kept free for everything that is not a VU connection (listeners, logs, the runtime).
const SPARE_FILES: u64 = 256;

/// What the check found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct LimitCheck {
    /// Things worth telling the user that do not stop the run.
    pub warnings: Vec<String>,
    /// The open-file limit in force after the check.
    pub open_files: u64,
}

/// Checks (and where possible raises) the limits a run of `users` VUs needs.
pub fn check(users: u64) -> Result<LimitCheck, Error> {
    let mut report = LimitCheck::default();
    let needed = users + SPARE_FILES;
    let (soft, hard) = rlimit::getrlimit(rlimit::Resource::NOFILE)
        .map_err(|e| Error::Limit(format!("could not read the open-file limit: {e}")))?;
    report.open_files = soft;
    if soft < needed {
        if hard >= needed {
            let target = hard.min(needed.max(65_536));
            rlimit::setrlimit(rlimit::Resource::NOFILE, target, hard)
                .map_err(|e| Error::Limit(format!("could not raise the open-file limit to {target}: {e}")))?;
            report.open_files = target;
        } else {
            return Err(Error::Limit(format!(
                "{users} users need about {needed} open files, but this process may open only {hard} (hard limit). \
                 Raise it with `ulimit -n {needed}` in this shell (or `LimitNOFILE=` for a service, \
                 /etc/security/limits.conf for a login), or run fewer users."
            )));
        }
    }
    if let Some(max_maps) = read_number("/proc/sys/vm/max_map_count") {
        // Stacks are pooled by calls in flight; only if every user were inside a task at once would each need one.
        let worst = users * 2 + 1_000;
        if worst > max_maps {
            report.warnings.push(format!(
                "vm.max_map_count is {max_maps}: at most about {} calls can be in flight at once (each fiber stack \
                 takes 2 maps). That is plenty unless most users sleep inside tasks; to lift it: \
                 `sudo sysctl -w vm.max_map_count={}`.",
                max_maps.saturating_sub(1_000) / 2,
                (worst * 2).next_power_of_two()
            ));
        }
    }
    if let Some(range) = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").ok().and_then(|s| {
        let mut it = s.split_whitespace().filter_map(|n| n.parse::<u64>().ok());
        Some(it.next()?..=it.next()?)
    }) {
        let ports = range.end() - range.start() + 1;
        if users > ports {
            report.warnings.push(format!(
                "{users} users open one connection each, but only {ports} local ports are available per target \
                 address (net.ipv4.ip_local_port_range = {} {}); widen the range or spread the load over several \
                 target addresses.",
                range.start(),
                range.end()
            ));
        }
    }
    Ok(report)
}

fn read_number(path: &str) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_small_run_passes_and_keeps_enough_files() {
        let report = check(10).unwrap();
        assert!(report.open_files >= 10 + SPARE_FILES);
    }

    #[test]
    fn an_impossible_run_says_how_to_raise_the_limit() {
        let err = check(u64::MAX / 4).unwrap_err().to_string();
        assert!(err.contains("ulimit -n"), "{err}");
    }
}
