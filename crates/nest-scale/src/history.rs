//! The history file: one JSON line per `nest scale` run, keyed by commit, that change-point tools can read too.
//!
//! Appends are safe against concurrent writers: the file is opened with `O_APPEND`, locked exclusively, and the
//! whole line goes out in one write (after a newline, should a crashed writer have left a line unfinished). A
//! line that does not parse is skipped with a warning naming its line number, never fatal.

use std::fs::OpenOptions;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::process::Command;

use serde::{Deserialize, Serialize};

use crate::doc::ScaleDoc;
use crate::error::ScaleError;
use crate::spec::Load;

/// The git state of the working directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GitInfo {
    /// The commit checked out (full hash).
    pub commit: String,
    /// The branch (`HEAD` when detached).
    pub branch: String,
    /// Uncommitted changes to tracked files.
    pub dirty: bool,
}

impl GitInfo {
    /// The state of the repository `dir` is in; `None` outside one (or without git).
    pub fn of(dir: &Path) -> Option<GitInfo> {
        let git = |args: &[&str]| {
            let out = Command::new("git").args(args).current_dir(dir).output().ok()?;
            out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
        };
        let commit = git(&["rev-parse", "HEAD"])?;
        let branch = git(&["rev-parse", "--abbrev-ref", "HEAD"]).unwrap_or_else(|| "HEAD".to_owned());
        let dirty = git(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
        Some(GitInfo { commit, branch, dirty })
    }

    /// The commit's first 7 characters.
    pub fn short(&self) -> &str {
        short(&self.commit)
    }
}

/// A hash's first 7 characters.
pub fn short(commit: &str) -> &str {
    commit.get(..7).unwrap_or(commit)
}

/// One step, as the history keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EntryStep {
    /// The offered load.
    pub load: Load,
    /// Requests per second.
    pub throughput_rps: f64,
    /// p95, raw, in milliseconds.
    pub p95_ms: f64,
    /// Failures over requests, in percent.
    pub error_pct: f64,
    /// Every SLO held.
    pub meets_slos: bool,
    /// The SLOs (as written) that failed at this step.
    #[serde(default)]
    pub failed_slos: Vec<String>,
}

/// One `nest scale` run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// When it ran, in seconds since the Unix epoch.
    pub time: f64,
    /// The git state, when run in a repository.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git: Option<GitInfo>,
    /// The plan hash.
    pub plan_hash: String,
    /// The machine.
    pub host: String,
    /// The SLOs as written.
    pub slos: Vec<String>,
    /// Capacity@SLO, requests per second.
    pub capacity_rps: Option<f64>,
    /// The load of the capacity step.
    pub capacity_load: Option<Load>,
    /// σ, when the fit was good.
    pub sigma: Option<f64>,
    /// κ, when the fit was good.
    pub kappa: Option<f64>,
    /// λ, when the fit was good.
    pub lambda: Option<f64>,
    /// N*, when determinable.
    pub n_star: Option<f64>,
    /// X_max, when determinable.
    pub x_max: Option<f64>,
    /// The steps.
    pub steps: Vec<EntryStep>,
}

impl Entry {
    /// The history line of a finished run.
    pub fn of(doc: &ScaleDoc) -> Entry {
        let fit = doc.scalability.fit.map(|f| f.model);
        Entry {
            time: doc.started_at,
            git: doc.git.clone(),
            plan_hash: doc.plan_hash.clone(),
            host: doc.host.clone(),
            slos: doc.slos.clone(),
            capacity_rps: doc.capacity.throughput_rps,
            capacity_load: doc.capacity.load,
            sigma: fit.map(|m| m.sigma),
            kappa: fit.map(|m| m.kappa),
            lambda: fit.map(|m| m.lambda),
            n_star: doc.scalability.n_star,
            x_max: doc.scalability.x_max,
            steps: doc
                .steps
                .iter()
                .map(|s| EntryStep {
                    load: s.load,
                    throughput_rps: s.throughput_rps,
                    p95_ms: s.latency_ms.p95,
                    error_pct: s.error_pct,
                    meets_slos: s.meets_slos,
                    failed_slos: s.slos.iter().filter(|v| !v.passed).map(|v| v.expr.clone()).collect(),
                })
                .collect(),
        }
    }

    /// The short commit, or `-`.
    pub fn short_commit(&self) -> &str {
        self.git.as_ref().map_or("-", |g| g.short())
    }
}

/// Appends `entry` as one line to `path` (creating it and its folder), under an exclusive lock.
pub fn append(path: &Path, entry: &Entry) -> Result<(), ScaleError> {
    let err = |e| ScaleError::file(path, e);
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    let mut line = serde_json::to_vec(entry).map_err(|e| err(std::io::Error::other(e)))?;
    line.push(b'\n');
    let file = OpenOptions::new().read(true).append(true).create(true).open(path).map_err(err)?;
    let mut lock = fd_lock::RwLock::new(file);
    let mut file = lock.write().map_err(err)?;
    // A writer that died mid-line left no newline: start on a fresh line, so only its line is lost.
    let len = file.seek(SeekFrom::End(0)).map_err(err)?;
    if len > 0 {
        let mut last = [0u8];
        file.seek(SeekFrom::Start(len - 1)).map_err(err)?;
        file.read_exact(&mut last).map_err(err)?;
        if last[0] != b'\n' {
            line.insert(0, b'\n');
        }
    }
    file.write_all(&line).map_err(err)?;
    file.flush().map_err(err)
}

/// The entries of `path` (none when it does not exist), and a warning per line that does not parse.
pub fn read(path: &Path) -> Result<(Vec<Entry>, Vec<String>), ScaleError> {
    let text = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), Vec::new())),
        Err(e) => return Err(ScaleError::file(path, e)),
    };
    let (mut entries, mut warnings) = (Vec::new(), Vec::new());
    for (i, line) in text.split(|&b| b == b'\n').enumerate() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match serde_json::from_slice::<Entry>(line) {
            Ok(entry) => entries.push(entry),
            Err(e) => warnings.push(format!("{}:{}: skipped a corrupt history line ({e})", path.display(), i + 1)),
        }
    }
    Ok((entries, warnings))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn entry(commit: &str, capacity: f64) -> Entry {
        Entry {
            time: 1.0,
            git: Some(GitInfo { commit: commit.to_owned(), branch: "main".into(), dirty: false }),
            plan_hash: "sha256:x".into(),
            host: "box".into(),
            slos: vec!["p95 < 28ms".into()],
            capacity_rps: Some(capacity),
            capacity_load: Some(Load::Users(16)),
            sigma: Some(0.05),
            kappa: Some(0.001),
            lambda: Some(100.0),
            n_star: Some(30.8),
            x_max: Some(900.0),
            steps: vec![EntryStep {
                load: Load::Users(16),
                throughput_rps: capacity,
                p95_ms: 20.0,
                error_pct: 0.0,
                meets_slos: true,
                failed_slos: Vec::new(),
            }],
        }
    }

    #[test]
    fn entries_round_trip_and_corrupt_lines_are_skipped_by_line_number() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/history.jsonl");
        append(&path, &entry("aaaaaaaaaa", 800.0)).unwrap();
        // A writer that died mid-line, then a line of garbage.
        std::fs::OpenOptions::new().append(true).open(&path).unwrap().write_all(b"{\"time\": 2, \"git").unwrap();
        append(&path, &entry("bbbbbbbbbb", 700.0)).unwrap();
        std::fs::OpenOptions::new().append(true).open(&path).unwrap().write_all(b"not json\n\n").unwrap();
        append(&path, &entry("cccccccccc", 600.0)).unwrap();
        let (entries, warnings) = read(&path).unwrap();
        let commits: Vec<&str> = entries.iter().map(Entry::short_commit).collect();
        assert_eq!(commits, ["aaaaaaa", "bbbbbbb", "ccccccc"]);
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(warnings[0].contains("history.jsonl:2: skipped a corrupt history line"), "{warnings:?}");
        assert!(warnings[1].contains("history.jsonl:4: skipped"), "{warnings:?}");
        assert_eq!(read(&dir.path().join("none.jsonl")).unwrap(), (Vec::new(), Vec::new()));
    }

    #[test]
    fn concurrent_appends_keep_every_line_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.jsonl");
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let path = path.clone();
                std::thread::spawn(move || {
                    for i in 0..25 {
                        let mut e = entry(&format!("{t:04}{i:06}"), (t * 100 + i) as f64);
                        // Long lines, so that an unlocked writer's pieces would interleave.
                        e.steps = vec![e.steps[0].clone(); 50];
                        append(&path, &e).unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let (entries, warnings) = read(&path).unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(entries.len(), 200);
        let mut seen: Vec<f64> = entries.iter().map(|e| e.capacity_rps.unwrap()).collect();
        seen.sort_by(f64::total_cmp);
        let want: Vec<f64> = (0..8).flat_map(|t| (0..25).map(move |i| (t * 100 + i) as f64)).collect();
        assert_eq!(seen, want);
    }
}
