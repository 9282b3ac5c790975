//! `--source-addr` / `source_addrs:` / `NEST_SOURCE_ADDRS`: outgoing connections come from the given local
//! addresses, round-robin by VU (the server sees the peer address), and a bad address is refused before load.

use std::collections::BTreeMap;

use crate::server::Server;
use crate::support::Sandbox;

const TASKSET: &str = r#"
task(1, t);

fn t() { client.get("/", #{ headers: #{ "X-VU": `${vu_id}` } }); }
"#;

/// Which source address each VU's requests came from.
fn peers_by_vu(server: &Server) -> BTreeMap<String, Vec<String>> {
    let mut by_vu: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for seen in server.seen() {
        let peers = by_vu.entry(seen.vu().expect("X-VU").to_owned()).or_default();
        let peer = seen.peer.to_string();
        if !peers.contains(&peer) {
            peers.push(peer);
        }
    }
    by_vu
}

#[test]
fn connections_come_from_the_source_addresses_round_robin_by_vu() {
    let server = Server::builder().record().start();
    let sandbox = Sandbox::new();
    sandbox.write("src.rhai", TASKSET);
    let run = sandbox.run(&server.url(), &["-u", "4", "--iterations", "12", "--source-addr", "127.0.0.2,127.0.0.3"]);
    run.assert_code(0);
    assert_eq!(run.report().total_requests(), server.total());
    let by_vu = peers_by_vu(&server);
    assert_eq!(by_vu.len(), 4, "{by_vu:?}");
    for (vu, peers) in &by_vu {
        let expected = if vu.parse::<u64>().unwrap() % 2 == 0 { "127.0.0.2" } else { "127.0.0.3" };
        assert_eq!(peers, &[expected], "VU {vu}: {by_vu:?}");
    }
    // The same from nest.yaml.
    sandbox.write_config("source_addrs: [127.0.0.4]\n");
    let before = server.total();
    sandbox.run(&server.url(), &["-u", "2", "--iterations", "4"]).assert_code(0);
    assert!(server.seen()[before as usize..].iter().all(|s| s.peer.to_string() == "127.0.0.4"));
}

#[test]
fn a_bad_source_address_is_refused_before_load() {
    let server = Server::start();
    let sandbox = Sandbox::new();
    sandbox.write("src.rhai", TASKSET);
    let run = sandbox.run(&server.url(), &["-u", "1", "--iterations", "1", "--source-addr", "127.0.0.2,nope"]);
    run.assert_code(2);
    assert!(run.context().contains("--source-addr: `nope` is not an IP address"), "{}", run.context());
    // Not an address of this machine (TEST-NET-1).
    let run = sandbox.run(&server.url(), &["-u", "1", "--iterations", "1", "--source-addr", "192.0.2.1"]);
    run.assert_code(2);
    assert!(run.context().contains("source address 192.0.2.1 cannot be used"), "{}", run.context());
    sandbox.write_config("users: 1\nsource_addrs:\n  - 127.0.0.300\n");
    let run = sandbox.run(&server.url(), &["--iterations", "1"]);
    run.assert_code(2);
    assert!(
        run.context().contains("nest.yaml:2:1: source_addrs: `127.0.0.300` is not an IP address"),
        "{}",
        run.context()
    );
    assert_eq!(server.total(), 0);
}
