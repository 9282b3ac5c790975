//! `setup()`'s value crossing processes: the factory encodes it as JSON, and a segment that did not run `setup()`
//! gets it decoded from the start order, as a coordinator would relay it. No HTTP: the tasks report what they see
//! as script errors.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use nest_core::rendezvous::RendezvousFuture;
use nest_core::{BehaviourFactory, Plan, Rendezvous, RendezvousError, RunHandle, RunResult, StartOrder};
use nest_rhai::Catalog;

mod common;

const SCRIPT: &str = r#"
wait_time(constant(0.001));
task(1, t);
fn setup() { #{ token: "abc", ids: [1, 2, 3], ratio: 0.5 } }
fn t() { throw `saw ${shared.token} ${shared.ids[2]} ${shared.ratio}`; }
"#;

/// A segment of a coordinated run: it runs the globals or not, and relays the setup value it is given (or `relay`).
struct Relay {
    globals: bool,
    relay: Option<Vec<u8>>,
}

impl Rendezvous for Relay {
    fn runs_globals(&self) -> bool {
        self.globals
    }
    fn shares_setup(&self) -> bool {
        true
    }
    fn start(&self, setup: Option<Vec<u8>>) -> RendezvousFuture<'_, Result<StartOrder, RendezvousError>> {
        let setup = setup.or_else(|| self.relay.clone());
        Box::pin(async move { Ok(StartOrder { at: SystemTime::now(), setup }) })
    }
    fn load_done(&self) -> RendezvousFuture<'_, ()> {
        Box::pin(async {})
    }
}

fn run(dir: &std::path::Path, rendezvous: Relay) -> RunResult {
    let catalog = Catalog::load(dir).unwrap();
    let plan = Plan::builder(catalog.specs())
        .users(2)
        .workers(1)
        .iterations(Some(4))
        .run_time(Some(Duration::from_secs(20)))
        .build()
        .unwrap();
    let factory = Arc::new(common::factory(&catalog));
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let snapshots = nest_core::snapshot::channel().0;
    rt.block_on(nest_core::run_with_rendezvous(plan, factory, RunHandle::new(), (), snapshots, Arc::new(rendezvous)))
        .unwrap()
}

fn seen(result: &RunResult) -> Vec<String> {
    result.aggregate.errors.keys().map(|(_, message)| message.clone()).collect()
}

#[test]
fn a_segment_without_setup_sees_the_value_segment_0_encoded() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("s.rhai"), SCRIPT).unwrap();
    let catalog = Catalog::load(dir.path()).unwrap();
    let factory = catalog.factory(Arc::new(nest_http::ClientConfig::new(false).unwrap()), None);
    let value: nest_core::Shared = Arc::new(serde_json::json!({ "token": "abc", "ids": [1, 2, 3], "ratio": 0.5 }));
    let bytes = factory.encode_shared(&value).unwrap();
    assert_eq!(String::from_utf8_lossy(&bytes), r#"{"ids":[1,2,3],"ratio":0.5,"token":"abc"}"#);
    let error = factory.decode_shared(b"{not json").err().unwrap();
    assert!(error.starts_with("setup(): the value received is not JSON"), "{error}");

    // Segment 0 runs setup() and sees the value the start order carries back; segment 1 runs no setup() and
    // sees the same value, decoded.
    let first = run(dir.path(), Relay { globals: true, relay: None });
    assert_eq!(seen(&first), ["saw abc 3 0.5"]);
    let other = run(dir.path(), Relay { globals: false, relay: Some(bytes) });
    assert_eq!(seen(&other), ["saw abc 3 0.5"]);
}
