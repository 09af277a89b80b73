//! The edge against scenes composed from photographs it was never tuned on
//! (`edge/tools/scenes.py` through the camera stand-in's `--scene`): other people, other
//! backgrounds (brick, a café, a street at night), a person who stands still for 20 s, a car
//! crossing and an empty street with swaying leaves. Cameras are added with the defaults, as a
//! user would. Each scene's ground truth comes from the stand-in (`--scene-list`, and its
//! `ACTOR_ENTER`/`ACTOR_EXIT` lines with wall-clock times); asserted: one person event per
//! appearance of a person in plain view (at least a quarter of the frame high), overlapping it
//! in time; the still person is one event; the car makes a vehicle event and no person event;
//! the empty scene makes none.
//!
//! Scenes run three at a time on one edge (two cores: detection for three live cameras).

mod support;

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::time::Duration;

use guardian_edge::store::{LocalEvent, Store};
use support::*;

/// One appearance as the stand-in saw it, in Unix seconds.
#[derive(Debug, Clone)]
struct Seen {
    kind: String,
    height: f64,
    enter: f64,
    exit: f64,
}

/// The stand-in's `ACTOR_ENTER`/`ACTOR_EXIT` lines, paired by actor.
fn actors(log: &Path) -> Vec<Seen> {
    let f = std::fs::File::open(log).unwrap();
    let mut open: HashMap<String, Seen> = HashMap::new();
    let mut done = Vec::new();
    for line in BufReader::new(f).lines().map_while(Result::ok) {
        let Some(kind_of_line) = line.split_whitespace().next() else {
            continue;
        };
        let kv: HashMap<&str, &str> = line
            .split_whitespace()
            .filter_map(|w| w.split_once('='))
            .collect();
        let t: f64 = match kv.get("t").and_then(|t| t.parse().ok()) {
            Some(t) => t,
            None => continue,
        };
        match kind_of_line {
            "ACTOR_ENTER" => {
                open.insert(
                    kv["actor"].to_string(),
                    Seen {
                        kind: kv["kind"].to_string(),
                        height: kv["height"].parse().unwrap(),
                        enter: t,
                        exit: f64::INFINITY,
                    },
                );
            }
            "ACTOR_EXIT" => {
                if let Some(mut s) = open.remove(kv["actor"]) {
                    s.exit = t;
                    done.push(s);
                }
            }
            _ => {}
        }
    }
    done.extend(open.into_values());
    done.sort_by(|a, b| a.enter.total_cmp(&b.enter));
    done
}

fn overlaps(e: &LocalEvent, s: &Seen) -> bool {
    let (from, to) = (
        e.record.started_at_ms as f64 / 1000.0,
        e.record.ended_at_ms as f64 / 1000.0,
    );
    from <= s.exit + 1.0 && to >= s.enter - 1.0
}

fn is_vehicle(category: &str) -> bool {
    matches!(category, "car" | "truck" | "bus" | "motorcycle" | "bicycle")
}

/// What a scene must give.
enum Expect {
    /// One person event per tall person appearance, and no other event.
    PersonPerAppearance,
    /// Exactly one person event (a person who walks in, stands, walks out).
    OnePersonEvent,
    /// At least one vehicle event, no person event.
    VehiclesOnly,
    /// No event at all.
    Nothing,
}

/// The tests share the machine's two cores: one at a time.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn run_scenes(scenes: &[(&str, Expect)]) {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let root = tempfile::tempdir().unwrap();
    let data = installed_edge(root.path());
    let mut edge = run_edge(&data);
    let mut standins = Vec::new();
    for (i, (scene, _)) in scenes.iter().enumerate() {
        let s = StandIn::start(
            root.path(),
            &[
                "--path",
                &format!("/cam{i}"),
                "--scene",
                scene,
                "--width",
                "1280",
                "--height",
                "720",
                "--fps",
                "10",
                "--gop",
                "20",
            ],
        );
        add_camera(&data, &format!("cam{i}"), &s.urls[0]);
        standins.push(s);
    }
    let mut logs = vec![edge.log.clone()];
    logs.extend(standins.iter().map(|s| s.proc.log.clone()));
    let log_refs: Vec<&Path> = logs.iter().map(|p| p.as_path()).collect();
    // Every scene played to its (empty) end: by then every event has closed (the scenes end
    // with 8 s of nothing, more than the 5 s post-roll) and its row is written.
    wait_for(
        "every scene to end",
        Duration::from_secs(120),
        &log_refs,
        || {
            standins.iter().all(|s| {
                std::fs::read_to_string(&s.proc.log)
                    .unwrap_or_default()
                    .contains("SCHEDULE_END")
            })
        },
    );
    let events = |cam: &str| {
        Store::open(&data.join("edge.sqlite"))
            .and_then(|s| s.events(Some(cam)))
            .unwrap_or_default()
    };
    let mut failures = Vec::new();
    for (i, ((scene, expect), standin)) in scenes.iter().zip(&standins).enumerate() {
        let cam = format!("cam{i}");
        let seen = actors(&standin.proc.log);
        let tall: Vec<&Seen> = seen
            .iter()
            .filter(|s| s.kind == "person" && s.height >= 0.25)
            .collect();
        let want = match expect {
            Expect::PersonPerAppearance => tall.len(),
            Expect::OnePersonEvent | Expect::VehiclesOnly => 1,
            Expect::Nothing => 0,
        };
        // Rows are written a moment after a clip closes: wait for the expected count (a
        // shortfall is reported below with what there is).
        let _ = wait_until(Duration::from_secs(15), || events(&cam).len() >= want);
        let ev = events(&cam);
        let people: Vec<&LocalEvent> = ev
            .iter()
            .filter(|e| e.record.category.as_str() == "person")
            .collect();
        let summary = format!(
            "{scene}: events {:?}, actors {seen:?}",
            ev.iter()
                .map(|e| (
                    e.record.category.as_str().to_string(),
                    e.record.score_milli,
                    e.record.started_at_ms,
                    e.record.ended_at_ms
                ))
                .collect::<Vec<_>>()
        );
        let ok = match expect {
            Expect::PersonPerAppearance => {
                !tall.is_empty()
                    && ev.len() == tall.len()
                    && tall
                        .iter()
                        .all(|s| people.iter().filter(|e| overlaps(e, s)).count() == 1)
            }
            Expect::OnePersonEvent => {
                ev.len() == 1 && people.len() == 1 && seen.iter().all(|s| overlaps(people[0], s))
            }
            Expect::VehiclesOnly => {
                people.is_empty()
                    && !ev.is_empty()
                    && ev.iter().all(|e| is_vehicle(e.record.category.as_str()))
                    && seen.iter().any(|s| ev.iter().any(|e| overlaps(e, s)))
            }
            Expect::Nothing => ev.is_empty(),
        };
        eprintln!("{} {summary}", if ok { "ok" } else { "FAILED" });
        if !ok {
            failures.push(summary);
        }
    }
    assert_eq!(edge.stop(), Some(0), "{}", edge.log_text());
    assert!(failures.is_empty(), "{failures:#?}");
}

/// Polls `f` every 200 ms for at most `timeout`; whether it held.
fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = std::time::Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if std::time::Instant::now() > end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn people_on_other_backgrounds_each_make_one_event_per_appearance() {
    run_scenes(&[
        ("brick-cameraman", Expect::PersonPerAppearance),
        ("cafe-astronaut", Expect::PersonPerAppearance),
        ("night-zidane", Expect::PersonPerAppearance),
    ]);
}

#[test]
fn a_still_person_is_one_event_a_car_is_a_vehicle_and_leaves_are_nothing() {
    run_scenes(&[
        ("still-person", Expect::OnePersonEvent),
        ("car-crossing", Expect::VehiclesOnly),
        ("empty-leaves", Expect::Nothing),
    ]);
}
