//! The load mix: which weight each taskset runs with, where that weight came from, and the table that shows it.
//!
//! Weight resolution is a pure function of the discovered tasksets and the config, unit-tested here. The same table
//! is printed before a run (for confirmation), by `nest list`, and as JSON by `nest list --json`.

use std::io::{self, Write};

use nest_core::{SmoothRoundRobin, TasksetSpec, WeightedTable};
pub use nest_report::model::{MixRow, MixTask, Source};

use crate::config::LoadedConfig;
use crate::parse::UsageError;

/// Sets each taskset's weight from the config. Returns the source of each weight, in catalog order.
///
/// Errors: a config name that matches no taskset (with the closest names), or every taskset disabled.
pub fn resolve(
    tasksets: &mut [TasksetSpec],
    config: Option<&LoadedConfig>,
    use_script_weights: bool,
) -> Result<Vec<Source>, UsageError> {
    let listed = config.map(|c| &c.file.tasksets).filter(|_| !use_script_weights);
    if let (Some(config), Some(listed)) = (config, listed) {
        let names: Vec<&str> = tasksets.iter().map(|t| t.name.as_str()).collect();
        for name in listed.keys() {
            if !names.contains(&name.as_str()) {
                return Err(UsageError(format!(
                    "{}: no taskset named `{name}`{}",
                    config.locate(Some("tasksets"), name),
                    suggest(name, &names)
                )));
            }
        }
    }
    let sources = tasksets
        .iter_mut()
        .map(|t| match listed.and_then(|l| l.get(&t.name)) {
            Some(weight) => {
                t.weight = weight.0;
                Source::Config
            }
            None if use_script_weights => Source::Script,
            None => Source::FromScript,
        })
        .collect();
    if !tasksets.iter().any(|t| t.weight > 0) {
        let place = match config {
            Some(c) if listed.is_some_and(|l| !l.is_empty()) => {
                format!("{}: ", c.locate(None, "tasksets"))
            }
            _ => String::new(),
        };
        return Err(UsageError(format!("{place}every taskset has weight 0: give at least one a weight of 1 or more")));
    }
    Ok(sources)
}

/// `; did you mean ...?` with the closest of `names`, or the list of names when none is close.
pub fn suggest(name: &str, names: &[&str]) -> String {
    let mut close: Vec<(f64, &str)> =
        names.iter().map(|n| (strsim::jaro_winkler(name, n), *n)).filter(|(score, _)| *score > 0.8).collect();
    close.sort_by(|a, b| b.0.total_cmp(&a.0));
    let pick: Vec<String> = close.iter().take(3).map(|(_, n)| format!("`{n}`")).collect();
    if !pick.is_empty() {
        format!("; did you mean {}?", pick.join(" or "))
    } else if names.len() <= 10 {
        format!("; the tasksets are: {}", names.join(", "))
    } else {
        "; run `nest list` to see the tasksets".to_owned()
    }
}

/// Builds the rows of the mix table.
pub fn rows(tasksets: &[TasksetSpec], sources: &[Source]) -> Vec<MixRow> {
    let weights: Vec<u32> = tasksets.iter().map(|t| t.weight).collect();
    let table = WeightedTable::new(&weights);
    tasksets
        .iter()
        .zip(sources)
        .enumerate()
        .map(|(i, (t, &source))| {
            let task_weights: Vec<u32> = t.tasks.iter().map(|k| k.weight).collect();
            let task_table = WeightedTable::new(&task_weights);
            MixRow {
                name: t.name.clone(),
                weight: t.weight,
                share_pct: table.as_ref().map_or(0.0, |tb| 100.0 * tb.share(i)),
                source,
                wait: t.wait.to_string(),
                on_start: t.has_on_start,
                on_stop: t.has_on_stop,
                tasks: t
                    .tasks
                    .iter()
                    .enumerate()
                    .map(|(j, k)| MixTask {
                        name: k.name.clone(),
                        weight: k.weight,
                        share_pct: task_table.as_ref().map_or(0.0, |tb| 100.0 * tb.share(j)),
                        nested: k.nested.is_some(),
                    })
                    .collect(),
                users: None,
                nested_in: tasksets
                    .iter()
                    .filter(|p| p.tasks.iter().any(|k| k.nested.as_deref() == Some(t.name.as_str())))
                    .map(|p| p.name.clone())
                    .collect(),
            }
        })
        .collect()
}

/// Fills in how many of `users` users start in each taskset (closed model with a known user count).
pub fn assign_users(rows: &mut [MixRow], users: u64) {
    let weights: Vec<u32> = rows.iter().map(|r| r.weight).collect();
    let Some(order) = SmoothRoundRobin::new(&weights) else { return };
    for (row, n) in rows.iter_mut().zip(order.counts(users)) {
        row.users = Some(n);
    }
}

/// Prints the mix table. The `Users` column appears when the user count is known (closed model).
pub fn print(out: &mut impl Write, rows: &[MixRow]) -> io::Result<()> {
    let width = rows
        .iter()
        .flat_map(|r| std::iter::once(r.name.len()).chain(r.tasks.iter().map(|t| t.name.len() + 4)))
        .max()
        .unwrap_or(0)
        .max(8);
    let with_users = rows.iter().any(|r| r.users.is_some());
    let users = |value: String| if with_users { format!(" {value:>6}") } else { String::new() };
    writeln!(
        out,
        "{:<width$} {:>7} {:>7}{}  {:<12} Think time",
        "Taskset",
        "Weight",
        "Share",
        users("Users".into()),
        "Source"
    )?;
    for r in rows {
        let share = match r.weight {
            0 if !r.nested_in.is_empty() => "nested".to_owned(),
            0 => "off".to_owned(),
            _ => format!("{:.1}%", r.share_pct),
        };
        let share = format!("{share:>7}{}", users(r.users.map_or(String::new(), |n| n.to_string())));
        let hooks = match (r.on_start, r.on_stop) {
            (true, true) => ", on_start, on_stop",
            (true, false) => ", on_start",
            (false, true) => ", on_stop",
            (false, false) => "",
        };
        writeln!(out, "{:<width$} {:>7} {share}  {:<12} {}{hooks}", r.name, r.weight, r.source.label(), r.wait)?;
        for t in &r.tasks {
            let nested = if t.nested { "  (nested taskset)" } else { "" };
            writeln!(out, "{:<width$} {:>7} {:>6.1}%{nested}", format!("    {}", t.name), t.weight, t.share_pct)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Weight, parse};
    use nest_core::TaskSpec;
    use std::path::PathBuf;

    fn ts(name: &str, weight: u32) -> TasksetSpec {
        TasksetSpec {
            name: name.into(),
            weight,
            tasks: vec![TaskSpec::new("a", 3), TaskSpec::new("b", 1)],
            ..Default::default()
        }
    }

    fn config(text: &str) -> LoadedConfig {
        LoadedConfig { path: PathBuf::from("nest.yaml"), text: text.into(), file: parse(text).unwrap() }
    }

    #[test]
    fn config_weights_win_unlisted_keep_the_script_weight() {
        let mut t = vec![ts("shop/browse", 3), ts("shop/checkout", 1), ts("admin", 2)];
        let c = config("tasksets:\n  shop/browse: 6\n  admin: 0\n");
        let sources = resolve(&mut t, Some(&c), false).unwrap();
        assert_eq!(sources, [Source::Config, Source::FromScript, Source::Config]);
        assert_eq!(t.iter().map(|t| t.weight).collect::<Vec<_>>(), [6, 1, 0]);
        let rows = rows(&t, &sources);
        assert!((rows[0].share_pct - 600.0 / 7.0).abs() < 1e-9);
        assert_eq!(rows[2].share_pct, 0.0);
        assert_eq!(rows[0].tasks[0].share_pct, 75.0);
    }

    #[test]
    fn use_script_weights_ignores_the_list() {
        let mut t = vec![ts("a", 3), ts("b", 1)];
        let mut c = config("tasksets:\n  a: 0\n  nope: 1\n");
        c.file.use_script_weights = Some(true);
        assert_eq!(resolve(&mut t, Some(&c), true).unwrap(), [Source::Script, Source::Script]);
        assert_eq!(t[0].weight, 3);
        assert_eq!(c.file.tasksets["a"], Weight(0));
    }

    #[test]
    fn unknown_names_point_at_the_key_and_suggest() {
        let mut t = vec![ts("shop/browse", 1), ts("shop/checkout", 1)];
        let e = resolve(&mut t, Some(&config("users: 1\ntasksets:\n  shop/brwose: 2\n")), false).unwrap_err().0;
        assert_eq!(e, "nest.yaml:3:3: no taskset named `shop/brwose`; did you mean `shop/browse`?");
        let e = resolve(&mut t, Some(&config("tasksets:\n  zzz: 2\n")), false).unwrap_err().0;
        assert!(e.ends_with("the tasksets are: shop/browse, shop/checkout"), "{e}");
    }

    #[test]
    fn users_are_split_exactly_and_nested_tasksets_are_marked() {
        let mut t = vec![ts("a", 3), ts("b", 1), ts("c", 0)];
        t[0].tasks.push(TaskSpec::nested("c", 2));
        let sources = vec![Source::FromScript; 3];
        let mut rows = rows(&t, &sources);
        assign_users(&mut rows, 20);
        assert_eq!(rows.iter().map(|r| r.users).collect::<Vec<_>>(), [Some(15), Some(5), Some(0)]);
        assert_eq!(rows[2].nested_in, ["a"]);
        assert!(rows[0].tasks[2].nested && !rows[0].tasks[0].nested);
        let mut out = Vec::new();
        print(&mut out, &rows).unwrap();
        let text = String::from_utf8(out).unwrap();
        let line = |name: &str| text.lines().find(|l| l.starts_with(&format!("{name} "))).unwrap().to_owned();
        assert!(text.lines().next().unwrap().contains("Share  Users"), "{text}");
        assert_eq!(line("a").split_whitespace().take(4).collect::<Vec<_>>(), ["a", "3", "75.0%", "15"], "{text}");
        assert_eq!(line("c").split_whitespace().take(4).collect::<Vec<_>>(), ["c", "0", "nested", "0"], "{text}");
        assert!(text.contains("    c ") && text.contains("(nested taskset)"), "{text}");
    }

    #[test]
    fn everything_disabled_is_an_error() {
        let mut t = vec![ts("a", 1), ts("b", 1)];
        let e = resolve(&mut t, Some(&config("users: 2\ntasksets:\n  a: 0\n  b: 0\n")), false).unwrap_err().0;
        assert!(e.starts_with("nest.yaml:2:1: every taskset has weight 0"), "{e}");
    }
}
