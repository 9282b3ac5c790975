//! `nest hook install` and `nest hook uninstall`: a git pre-push hook that load-tests before every push.
//!
//! The hook is where a developer meets nest without asking for it, so it has to be predictable: it is a short POSIX
//! sh script, written atomically into the folder git itself names (`git rev-parse --git-path hooks`, which follows
//! `core.hooksPath` and worktrees), and it carries a marker line so that nest never overwrites or removes a hook it
//! did not write. It runs `nest run --yes` with stdin from /dev/null, so it never prompts; it lets pushes that only
//! delete refs through untouched; and whenever it blocks a push it says why and how to skip it. A hook that was
//! there before can be kept with `--chain`: it is moved aside and called first, with the same arguments and stdin.
//!
//! The load test runs on what is pushed, not on the working tree: each pushed commit is checked out in a temporary
//! `git worktree` (removed afterwards, whatever happens), so an untracked or uncommitted file can neither block a
//! good commit nor let a broken one through. The output names the commit it tested.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};
use clap::Parser;

use crate::cli::{Cli, HookArgs, HookCommand, HookInstallArgs};
use crate::shell::quote;
use nest_config::parse::UsageError;

/// The start of the marker line in every hook nest writes; the version after it may change.
const MARKER: &str = "# nest pre-push hook v";
/// The marker line of the hook this version writes.
const MARKER_LINE: &str = "# nest pre-push hook v2";
/// The name the previous hook is moved to by `--chain`, beside the hook.
const CHAINED: &str = "pre-push.nest-chained";

/// Runs `nest hook`.
pub fn run(args: HookArgs) -> Result<()> {
    match args.command {
        HookCommand::Install(args) => install(&args),
        HookCommand::Uninstall => uninstall(),
    }
}

/// Where the hook goes, as git sees it from the current directory.
struct Hooks {
    dir: PathBuf,
    hook: PathBuf,
    chained: PathBuf,
}

impl Hooks {
    /// Asks git for the hooks folder, so that `core.hooksPath`, worktrees and `GIT_DIR` are all honoured.
    fn locate() -> Result<Hooks> {
        let dir = PathBuf::from(git(&["rev-parse", "--git-path", "hooks"])?);
        // git answers relative to the current directory.
        let dir = if dir.is_absolute() { dir } else { std::env::current_dir()?.join(dir) };
        Ok(Hooks { hook: dir.join("pre-push"), chained: dir.join(CHAINED), dir })
    }
}

/// What is at the hook's path now.
#[derive(Debug, PartialEq)]
enum Existing {
    Nothing,
    Nest,
    Foreign,
}

fn existing(path: &Path) -> Result<Existing> {
    match fs::read(path) {
        Ok(bytes) => Ok(if is_nest_hook(&bytes) { Existing::Nest } else { Existing::Foreign }),
        Err(e) if e.kind() == io::ErrorKind::NotFound && path.symlink_metadata().is_err() => Ok(Existing::Nothing),
        // A dangling symlink or an unreadable file: not ours either way.
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Existing::Foreign),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

fn is_nest_hook(bytes: &[u8]) -> bool {
    String::from_utf8_lossy(bytes).lines().any(|line| line.starts_with(MARKER))
}

fn install(args: &HookInstallArgs) -> Result<()> {
    // `--scale`: `nest scale --gate`, its history kept at the repository's top (the run's checkout is temporary).
    let (command, mut run_args) = if args.scale { (SCALE, args.args.clone()) } else { (RUN, args.args.clone()) };
    if args.scale && !run_args.iter().any(|a| a == "--history" || a.starts_with("--history=")) {
        run_args.extend(["--history".to_owned(), nest_scale::spec::DEFAULT_HISTORY.to_owned()]);
    }
    check_run_args(command, &run_args)?;
    let hooks = Hooks::locate()?;
    let nest = std::env::current_exe().context("cannot find the path of this nest binary")?;
    let script = script(&nest.to_string_lossy(), command, &run_args);

    let mut notes = Vec::new();
    let mut moved = false;
    match existing(&hooks.hook)? {
        Existing::Nothing => {}
        Existing::Nest => notes.push("updated nest's existing hook".to_owned()),
        Existing::Foreign if args.chain => {
            if hooks.chained.symlink_metadata().is_ok() {
                return Err(UsageError(format!(
                    "cannot chain: {} already exists, and so does a pre-push hook that nest did not write; move one \
                     of them away first",
                    hooks.chained.display()
                ))
                .into());
            }
            fs::rename(&hooks.hook, &hooks.chained)
                .with_context(|| format!("cannot move the existing hook to {}", hooks.chained.display()))?;
            notes.push(format!("moved the existing hook to {}; it runs first, on every push", hooks.chained.display()));
            moved = true;
        }
        Existing::Foreign if args.force => notes.push("replaced a pre-push hook that nest did not write".to_owned()),
        Existing::Foreign => {
            return Err(UsageError(format!(
                "{} exists and nest did not write it; use --chain to keep it and run it before nest, or --force to \
                 replace it",
                hooks.hook.display()
            ))
            .into());
        }
    }
    if !moved && hooks.chained.is_file() {
        notes.push(format!("the previous hook, {}, still runs first", hooks.chained.display()));
    } else if !moved && args.chain {
        notes.push("--chain: there was no other pre-push hook to chain".to_owned());
    }

    fs::create_dir_all(&hooks.dir).with_context(|| format!("cannot create {}", hooks.dir.display()))?;
    write_executable(&hooks.hook, script.as_bytes())
        .with_context(|| format!("cannot write {}", hooks.hook.display()))?;

    for note in notes {
        eprintln!("{note}");
    }
    eprintln!("installed {}: every `git push` first runs `{}`", hooks.hook.display(), run_command(command, &run_args));
    if args.args.is_empty() && !has_default_config() {
        eprintln!(
            "warning: no nest.yaml is committed at the top of the repository, and the hook tests each pushed commit \
             as committed; commit one, or reinstall with the options after --, e.g. `nest hook install -- --host \
             http://127.0.0.1:8080 -t 30s`"
        );
    }
    eprintln!("to push without it: git push --no-verify, or NEST_SKIP=1 git push");
    Ok(())
}

fn uninstall() -> Result<()> {
    let hooks = Hooks::locate()?;
    match existing(&hooks.hook)? {
        Existing::Nothing => {
            eprintln!("no pre-push hook at {}: nothing to uninstall", hooks.hook.display());
            return Ok(());
        }
        Existing::Foreign => {
            return Err(UsageError(format!(
                "{} was not written by nest; remove it yourself if you no longer want it",
                hooks.hook.display()
            ))
            .into());
        }
        Existing::Nest => {}
    }
    if hooks.chained.symlink_metadata().is_ok() {
        // One rename: the previous hook takes the place of nest's, with no moment without either.
        fs::rename(&hooks.chained, &hooks.hook)
            .with_context(|| format!("cannot restore {} as {}", hooks.chained.display(), hooks.hook.display()))?;
        eprintln!("removed nest's pre-push hook and restored the previous one at {}", hooks.hook.display());
    } else {
        fs::remove_file(&hooks.hook).with_context(|| format!("cannot remove {}", hooks.hook.display()))?;
        eprintln!("removed nest's pre-push hook at {}", hooks.hook.display());
    }
    Ok(())
}

/// Refuses, at install time, arguments that `nest run` would refuse at every push.
fn check_run_args(command: &str, args: &[String]) -> Result<(), UsageError> {
    let argv = ["nest"].into_iter().chain(command.split(' ')).map(str::to_owned).chain(args.iter().cloned());
    let name = command.split(' ').next().unwrap_or("run");
    match Cli::try_parse_from(argv) {
        Ok(_) => Ok(()),
        Err(e) => Err(UsageError(format!("the arguments after -- are not valid for `nest {name}`:\n{e}"))),
    }
}

/// What the hook runs before the arguments: a load test, or with `--scale` the scalability gate.
const RUN: &str = "run --yes";
/// See [`RUN`].
const SCALE: &str = "scale --gate --yes";

/// Whether the hook's `nest run` finds a nest.yaml: it runs at the top of the pushed commit, so the file must be
/// committed there (checked on HEAD).
fn has_default_config() -> bool {
    // A bare repository has no working tree: say nothing rather than guess.
    if git(&["rev-parse", "--show-toplevel"]).is_err() {
        return true;
    }
    git(&["cat-file", "-e", &format!("HEAD:{}", nest_config::config::DEFAULT_FILE)]).is_ok()
}

/// Runs git in the current directory and returns its trimmed stdout; any failure is a usage error.
fn git(args: &[&str]) -> Result<String> {
    let out = Command::new("git").args(args).output().map_err(|e| {
        UsageError(format!("cannot run git ({e}): nest hook needs git on the PATH, inside a git repository"))
    })?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        return Err(UsageError(format!(
            "not inside a git repository (or git failed): `git {}` said: {}",
            args.join(" "),
            stderr.trim()
        ))
        .into());
    }
    Ok(String::from_utf8(out.stdout).context("git printed a path that is not UTF-8")?.trim_end().to_owned())
}

/// Writes an executable file atomically: a reader (or a concurrent `git push`) sees the old hook or the whole new
/// one, and never a new one that is not yet executable, which git would silently skip.
fn write_executable(path: &Path, bytes: &[u8]) -> io::Result<()> {
    nest_report::output::write_with_mode(path, bytes, Some(0o755))
}

/// The command the hook runs, as a person would type it.
fn run_command(run: &str, args: &[String]) -> String {
    let mut command = format!("nest {run}");
    for arg in args {
        command.push(' ');
        command.push_str(&quote(arg));
    }
    command
}

/// The options of `nest run` (and `nest scale`) that name a file (or prefix) it writes.
const OUTPUT_FLAGS: [&str; 5] = ["--json", "--csv", "--html", "--junit", "--history"];

/// The arguments as shell words for the hook. The run happens in a temporary checkout, so a relative report path
/// (`--json out/r.json`, `--csv=out/r`) is made relative to the repository's top (`$root`, found by the hook)
/// instead, where it outlives the checkout; every other path stays relative to the commit being tested.
fn hook_args(args: &[String]) -> String {
    let in_root = |path: &str| {
        if Path::new(path).is_absolute() { quote(path).into_owned() } else { format!("\"$root\"/{}", quote(path)) }
    };
    let mut words = String::new();
    let mut output_next = false;
    for arg in args {
        let word = if std::mem::take(&mut output_next) {
            in_root(arg)
        } else if OUTPUT_FLAGS.contains(&arg.as_str()) {
            output_next = true;
            quote(arg).into_owned()
        } else {
            match arg.split_once('=') {
                Some((flag, path)) if OUTPUT_FLAGS.contains(&flag) && !path.is_empty() => {
                    format!("{flag}={}", in_root(path))
                }
                _ => quote(arg).into_owned(),
            }
        };
        words.push(' ');
        words.push_str(&word);
    }
    words
}

/// The hook script: `nest` is the binary that installed it, `args` go after `nest COMMAND` (`run --yes`).
fn script(nest: &str, command: &str, args: &[String]) -> String {
    let args = hook_args(args);
    HOOK_TEMPLATE
        .replace("@COMMAND@", command)
        .replace("@MARKER@", MARKER_LINE)
        .replace("@CHAINED@", CHAINED)
        .replace("@NEST@", &quote(nest))
        .replace("@ARGS@", &args)
}

const HOOK_TEMPLATE: &str = r#"#!/bin/sh
@MARKER@
# Written by `nest hook install`; `nest hook uninstall` removes it (edits here are lost on the next install).
# Before each push it runs a load test, and blocks the push when the run fails or a threshold is breached.
# To push without it: git push --no-verify, or NEST_SKIP=1 git push

# The nest that installed this hook; if it has gone (an upgrade, say), the one on the PATH.
installed=@NEST@
nest_bin=$installed
[ -x "$nest_bin" ] || nest_bin=nest

remote=$1
chained="$(dirname -- "$0")/@CHAINED@"

# git writes one line per ref on stdin: <local ref> <local sha> <remote ref> <remote sha>. Keep them, for the
# chained hook and to name what is pushed; nest itself gets /dev/null, so it never waits for an answer.
tmp=$(mktemp -d "${TMPDIR:-/tmp}/nest-pre-push.XXXXXX") || exit 1
refs="$tmp/refs"
tree=
cleanup() {
    if [ -n "$tree" ]; then
        git worktree remove --force "$tree" > /dev/null 2>&1
    fi
    rm -rf "$tmp"
    git worktree prune > /dev/null 2>&1
}
trap cleanup EXIT
trap 'exit 130' HUP INT TERM
cat > "$refs"

# A hook that was here before `nest hook install --chain` runs first, as git would have run it.
if [ -x "$chained" ]; then
    "$chained" "$@" < "$refs" || {
        status=$?
        echo "nest: the previous pre-push hook ($chained) failed (exit $status): the push is blocked." >&2
        exit $status
    }
fi

case ${NEST_SKIP:-} in
    1 | true | yes | on)
        echo "nest: NEST_SKIP is set: skipping the load test." >&2
        exit 0
        ;;
esac

shas=
while read -r local_ref local_sha remote_ref remote_sha || [ -n "$local_ref" ]; do
    case $local_sha in
        *[!0]*) ;;
        *) continue ;; # all zeros: this ref is being deleted, nothing new goes out
    esac
    short=$(git rev-parse --short "$local_sha" 2>/dev/null) || short=$local_sha
    subject=$(git log -1 --format=%s "$local_sha" 2>/dev/null)
    echo "nest: load test before pushing $short ($subject) to $remote ${remote_ref#refs/heads/}" >&2
    case " $shas " in
        *" $local_sha "*) ;;
        *) shas="$shas $local_sha" ;;
    esac
done < "$refs"
if [ -z "$shas" ]; then
    echo "nest: this push only deletes refs: no load test." >&2
    exit 0
fi

# Each pushed commit is tested as committed, in a temporary worktree: untracked and uncommitted files play no part.
# Report paths given as relative are written under the repository's top (git runs this hook there), not the
# temporary worktree, which is removed.
root=$(git rev-parse --show-toplevel 2>/dev/null) || root=$(pwd)
for sha in $shas; do
    short=$(git rev-parse --short "$sha" 2>/dev/null) || short=$sha
    tree="$tmp/$short"
    # No hook runs for this checkout (a post-checkout hook is not ours to trigger).
    if ! git -c core.hooksPath=/dev/null worktree add --quiet --detach "$tree" "$sha" > "$tmp/checkout.log" 2>&1; then
        echo "nest: cannot check out $short in a temporary worktree: the push is blocked." >&2
        cat "$tmp/checkout.log" >&2
        exit 1
    fi
    echo "nest: testing commit $short as committed (in a temporary worktree)" >&2
    (cd "$tree" && exec "$nest_bin" @COMMAND@@ARGS@ < /dev/null)
    status=$?
    git worktree remove --force "$tree" > /dev/null 2>&1
    tree=
    if [ "$status" -ne 0 ]; then
        case $status in
            99) why="a threshold was breached" ;;
            2) why="the run could not start (a usage, config or script error)" ;;
            127) why="nest was not found (neither at $installed nor on the PATH)" ;;
            *) why="the load test failed" ;;
        esac
        echo "nest: commit $short: $why (exit $status): the push is blocked." >&2
        echo "nest: to push anyway: git push --no-verify, or NEST_SKIP=1 git push" >&2
        exit "$status"
    fi
    echo "nest: the load test passed on commit $short." >&2
done
exit 0
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_script_carries_the_marker_the_binary_and_the_arguments() {
        let s = script("/opt/my nest/nest", RUN, &["-t".into(), "10s".into(), "--threshold".into(), "p95 < 1s".into()]);
        assert!(s.starts_with("#!/bin/sh\n# nest pre-push hook v2\n"));
        assert!(is_nest_hook(b"#!/bin/sh\n# nest pre-push hook v1\n"), "an older nest's hook is nest's too");
        assert!(is_nest_hook(s.as_bytes()));
        assert!(s.contains("installed='/opt/my nest/nest'\n"));
        assert!(s.contains(r#"exec "$nest_bin" run --yes -t 10s --threshold 'p95 < 1s' < /dev/null"#));
        assert!(s.contains("pre-push.nest-chained"));
        for placeholder in ["@MARKER@", "@CHAINED@", "@NEST@", "@ARGS@"] {
            assert!(!s.contains(placeholder), "{placeholder} is filled");
        }
        assert!(!is_nest_hook(b"#!/bin/sh\nexec husky\n"));
    }

    #[test]
    fn relative_report_paths_are_anchored_at_the_repository_top() {
        let args: Vec<String> =
            ["--json", "out/r.json", "--csv=out/r", "--html", "/abs/r.html", "-f", "tasksets", "--junit=j.xml"]
                .map(str::to_owned)
                .into();
        assert_eq!(
            hook_args(&args),
            r#" --json "$root"/out/r.json --csv="$root"/out/r --html /abs/r.html -f tasksets --junit="$root"/j.xml"#
        );
    }

    #[test]
    fn run_arguments_are_checked_at_install() {
        assert!(check_run_args(RUN, &[]).is_ok());
        assert!(check_run_args(RUN, &["-t".into(), "5s".into(), "--host".into(), "http://x".into()]).is_ok());
        let err = check_run_args(RUN, &["--no-such-flag".into()]).unwrap_err();
        assert!(err.0.contains("--no-such-flag"), "{err}");
    }

    #[test]
    fn the_scale_hook_runs_the_gate_with_its_history_at_the_repository_top() {
        let s = script(
            "/bin/nest",
            SCALE,
            &["--history".into(), ".nest/history.jsonl".into(), "--steps".into(), "1,2".into()],
        );
        assert!(
            s.contains(
                r#"exec "$nest_bin" scale --gate --yes --history "$root"/.nest/history.jsonl --steps 1,2 < /dev/null"#
            ),
            "{s}"
        );
        assert!(check_run_args(SCALE, &["--steps".into(), "1,4".into(), "--slo".into(), "p95 < 1s".into()]).is_ok());
        assert!(check_run_args(SCALE, &["--stepz".into()]).unwrap_err().0.contains("not valid for `nest scale`"));
    }
}
