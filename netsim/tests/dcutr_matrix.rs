//! Scenario c: a client behind NAT A reaches an edge behind NAT B through the vm's relay, then
//! goes direct with DCUtR, for every pair of NAT profiles. Pairs of endpoint-independent
//! mappings (with UDP) must be direct within 15 s; pairs a symmetric NAT makes impossible must
//! stay relayed and still connect; every pair must connect.

use std::time::{Duration, Instant};

use guardian_netsim::{Impairment, NatProfile, matrix, scenario};

#[test]
fn relay_then_direct_over_every_pair_of_nats() {
    if !guardian_netsim::can_run_or_say_skipped() {
        return;
    }
    let t = Instant::now();
    let (lab, vm) = scenario::lab_with_vm().unwrap();
    // A relay 20 ms away each way (the peers' own links have none): relayed round trips of
    // 80 ms, so times to relayed and to direct mean something.
    lab.impair(
        &vm.host.link,
        Impairment {
            delay: Duration::from_millis(20),
            ..Default::default()
        },
    )
    .unwrap();
    let pairs = matrix::all_pairs(&NatProfile::ALL);
    let results = matrix::run(&lab, &vm, &pairs, pairs.len(), Duration::from_secs(20)).unwrap();
    let table = matrix::table(&results);
    eprintln!("{table}");
    eprintln!(
        "{} pairs in {:.1} s",
        results.len(),
        t.elapsed().as_secs_f64()
    );
    let failed: Vec<String> = results.iter().filter_map(|r| r.check().err()).collect();
    assert!(failed.is_empty(), "{}\n{table}", failed.join("\n"));
}
