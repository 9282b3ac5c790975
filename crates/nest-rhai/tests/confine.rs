//! `import` stays inside the taskset folder once Rhai's own path rules and symbolic links are applied: a dotted
//! name (Rhai replaces any extension with `.rhai`), `..`, an absolute path, a link planted in the folder and an
//! import made from inside a module are all refused, while `Confine::off()` loads the same files.

use std::path::Path;

use nest_rhai::{Catalog, Confine, LoadOptions};

/// A project folder `tasksets/` beside an `outside/evil.rhai` that defines `evil::leak()`.
struct Layout {
    root: tempfile::TempDir,
}

impl Layout {
    fn new() -> Layout {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("tasksets")).unwrap();
        std::fs::create_dir_all(root.path().join("outside")).unwrap();
        std::fs::write(root.path().join("outside/evil.rhai"), "fn leak() { \"secret\" }\n").unwrap();
        Layout { root }
    }

    fn tasksets(&self) -> std::path::PathBuf {
        self.root.path().join("tasksets")
    }

    fn write(&self, name: &str, source: &str) {
        std::fs::write(self.tasksets().join(name), source).unwrap();
    }

    /// The load errors with the default confinement (the taskset folder), joined.
    fn refused(&self) -> String {
        match Catalog::load(&self.tasksets()) {
            Ok(_) => panic!("the taskset loaded, reading outside the folder"),
            Err(errors) => errors.0.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n"),
        }
    }

    /// Loads with confinement off: the same import then reads `outside/evil.rhai`.
    fn loads_unconfined(&self) {
        let options = LoadOptions { confine: Some(Confine::off()), ..LoadOptions::default() };
        if let Err(errors) = Catalog::load_with(&self.tasksets(), options) {
            panic!("unconfined load failed: {:?}", errors.0.iter().map(|e| e.to_string()).collect::<Vec<_>>());
        }
    }
}

fn importing(path: &str) -> String {
    format!("import \"{path}\" as evil;\nlet leaked = evil::leak();\ntask(1, t);\nfn t() {{}}\n")
}

fn assert_outside(message: &str, evil: &Path) {
    assert!(message.contains("outside the project"), "{message}");
    assert!(message.contains(&evil.display().to_string()), "names where it leads: {message}");
}

#[test]
fn a_dotted_name_is_checked_as_the_file_rhai_reads() {
    let layout = Layout::new();
    layout.write("a.rhai", &importing("../outside/evil.x"));
    let evil = std::fs::canonicalize(layout.root.path().join("outside/evil.rhai")).unwrap();
    assert_outside(&layout.refused(), &evil);
    layout.loads_unconfined();
}

#[test]
fn dot_dot_and_absolute_paths_are_refused() {
    let layout = Layout::new();
    let evil = std::fs::canonicalize(layout.root.path().join("outside/evil.rhai")).unwrap();
    layout.write("a.rhai", &importing("../outside/evil"));
    assert_outside(&layout.refused(), &evil);
    layout.loads_unconfined();
    for absolute in [evil.with_extension(""), evil.with_extension("x")] {
        layout.write("a.rhai", &importing(&absolute.display().to_string()));
        assert_outside(&layout.refused(), &evil);
        layout.loads_unconfined();
    }
}

#[test]
fn a_missing_module_outside_is_refused_and_one_inside_reports_itself() {
    let layout = Layout::new();
    layout.write("a.rhai", &importing("../outside/nothing"));
    let message = layout.refused();
    assert!(message.contains("outside the project"), "{message}");
    layout.write("a.rhai", &importing("nothing"));
    let message = layout.refused();
    assert!(!message.contains("outside the project"), "{message}");
}

#[cfg(unix)]
#[test]
fn a_link_inside_the_folder_to_a_file_outside_is_refused() {
    let layout = Layout::new();
    let evil = std::fs::canonicalize(layout.root.path().join("outside/evil.rhai")).unwrap();
    std::os::unix::fs::symlink(&evil, layout.tasksets().join("_lib.rhai")).unwrap();
    layout.write("a.rhai", &importing("_lib"));
    assert_outside(&layout.refused(), &evil);
    layout.write("a.rhai", &importing("_lib.anything"));
    assert_outside(&layout.refused(), &evil);
    layout.loads_unconfined();
}

#[test]
fn an_import_from_inside_a_module_is_checked_too() {
    let layout = Layout::new();
    let evil = std::fs::canonicalize(layout.root.path().join("outside/evil.rhai")).unwrap();
    layout.write("_common.rhai", "import \"../outside/evil.x\" as evil;\nfn leak() { evil::leak() }\n");
    layout.write("a.rhai", &importing("_common"));
    assert_outside(&layout.refused(), &evil);
    layout.loads_unconfined();
}

#[test]
fn dotted_and_plain_names_inside_the_folder_load() {
    let layout = Layout::new();
    layout.write("_common.rhai", "fn leak() { \"fine\" }\n");
    for name in ["_common", "_common.x", "./_common"] {
        layout.write("a.rhai", &importing(name));
        if let Err(errors) = Catalog::load(&layout.tasksets()) {
            panic!("{name}: {:?}", errors.0.iter().map(|e| e.to_string()).collect::<Vec<_>>());
        }
    }
}
