//! Start-up order: the release phase, readiness, `after`, reverse stop, health.

use std::collections::BTreeMap;
use std::time::Duration;

use nix::sys::signal::Signal;

use super::*;
use crate::supervisor::core::{Effect, Event, Order, Phase};
use crate::supervisor::instance::State;

const APP: &str = "release: migrate\nweb: serve\nworker: work\n";

fn order(first: bool, after: &[(&str, &[&str])], probed: &[&str]) -> Order {
    Order {
        first: first.then(|| "release".to_string()),
        after: after
            .iter()
            .map(|(t, deps)| {
                (
                    (*t).to_string(),
                    deps.iter().map(|d| (*d).to_string()).collect(),
                )
            })
            .collect(),
        probed: probed
            .iter()
            .map(|t| {
                (
                    (*t).to_string(),
                    ("port".to_string(), Duration::from_secs(10)),
                )
            })
            .collect::<BTreeMap<_, _>>(),
    }
}

fn states(b: &Bench) -> Vec<&'static str> {
    b.core
        .instances()
        .iter()
        .map(|i| match i.state {
            State::Waiting => "waiting",
            State::Starting { .. } => "starting",
            State::Running { .. } => "running",
            State::Exited(_) => "exited",
            State::Stopping { .. } => "stopping",
            State::Stopped => "stopped",
            _ => "other",
        })
        .collect()
}

#[test]
fn release_runs_first_and_alone_and_its_success_starts_the_rest() {
    let mut b = bench_with(APP, "all=1", &[], &[], order(true, &[], &[]), &[]);
    assert_eq!(states(&b), ["running", "waiting", "waiting"]);
    let effects = b.exit(0, Exit::Code(0));
    assert_eq!(said(&effects), ["release.1 exited with code 0"]);
    assert!(effects.contains(&Effect::Spawn(1)) && effects.contains(&Effect::Spawn(2)));
    b.spawn_all(&effects);
    assert_eq!(states(&b), ["exited", "running", "running"]);
    assert_eq!(b.core.phase(), Phase::Running);
}

#[test]
fn a_failed_release_stops_there_with_its_status() {
    let mut b = bench_with(APP, "all=1", &[], &[], order(true, &[], &[]), &[]);
    let effects = b.exit(0, Exit::Code(4));
    assert!(!effects.iter().any(|e| matches!(e, Effect::Spawn(_))));
    assert!(b.core.quiet());
    assert_eq!(b.core.status(), 4);
    assert_eq!(states(&b), ["exited", "stopped", "stopped"]);
}

#[test]
fn after_waits_for_readiness_and_ready_is_announced() {
    let mut b = bench_with(
        APP,
        "all=1",
        &[],
        &[],
        order(false, &[("worker", &["web"])], &["web"]),
        &[],
    );
    assert_eq!(states(&b), ["running", "starting", "waiting"]);
    b.now += Duration::from_millis(1420);
    let run = b.core.instance(1).run;
    let effects = b.event(Event::Ready { index: 1, run });
    assert!(said(&effects).contains(&"web.1 ready in 1.42s (port)"));
    assert!(effects.contains(&Effect::Spawn(2)));
    assert!(effects.contains(&Effect::EndProbe(1)));
    // A stale run's readiness changes nothing.
    assert!(
        b.event(Event::Ready {
            index: 1,
            run: run + 7
        })
        .is_empty()
    );
}

#[test]
fn a_oneshot_dependency_counts_once_it_exited_0() {
    let mut b = bench_with(
        "setup: s\nweb: w\n",
        "all=1",
        &[],
        &[],
        order(false, &[("web", &["setup"])], &[]),
        &["setup"],
    );
    assert_eq!(states(&b), ["running", "waiting"]);
    let effects = b.exit(0, Exit::Code(0));
    assert!(effects.contains(&Effect::Spawn(1)));
}

#[test]
fn not_ready_in_time_stops_the_app_with_1() {
    let mut b = bench_with(APP, "all=1", &[], &[], order(false, &[], &["web"]), &[]);
    // The event loop wakes for the deadline without any event.
    assert_eq!(
        b.core.next_deadline(),
        Some(b.now + Duration::from_secs(10))
    );
    let effects = b.advance(Duration::from_secs(10));
    assert_eq!(
        said(&effects)[0],
        "web.1 not ready after 10s (port), stopping"
    );
    assert_eq!(b.core.status(), 1);
    assert!(matches!(b.core.phase(), Phase::Stopping { .. }));
}

/// release, web and worker running, worker started after web.
fn worker_after_web() -> Bench {
    bench_with(
        APP,
        "all=1",
        &[],
        &[],
        order(false, &[("worker", &["web"])], &[]),
        &[],
    )
}

#[test]
fn stop_runs_in_reverse_order_within_one_deadline() {
    let mut b = worker_after_web();
    let (release, web, worker) = (b.pid(0), b.pid(1), b.pid(2));
    let effects = b.event(Event::Stop(Signal::SIGTERM));
    let first: Vec<_> = signalled(&effects).into_iter().map(|(p, _)| p).collect();
    assert!(first.contains(&worker) && first.contains(&release));
    assert!(!first.contains(&web), "web waits for worker to exit");
    let effects = b.exit(2, Exit::Signal(15));
    assert!(signalled(&effects).contains(&(web, Signal::SIGTERM)));
    // A dependent that will not exit: everything is killed at the one deadline.
    let mut b = worker_after_web();
    let (web, worker) = (b.pid(1), b.pid(2));
    b.event(Event::Stop(Signal::SIGTERM));
    let effects = b.advance(TIMEOUT);
    let killed = signalled(&effects);
    assert!(
        killed.contains(&(web, Signal::SIGKILL)) && killed.contains(&(worker, Signal::SIGKILL))
    );
}

#[test]
fn health_says_what_is_not_ready_and_why() {
    let mut b = bench_with(
        APP,
        "all=1",
        &[],
        &[],
        order(true, &[("worker", &["web"])], &["web"]),
        &[],
    );
    assert_eq!(
        b.core.not_ready(),
        [
            "web.1: waiting for release".to_string(),
            "worker.1: waiting for release, web".to_string()
        ]
    );
    let effects = b.exit(0, Exit::Code(0));
    b.spawn_all(&effects);
    assert_eq!(
        b.core.not_ready(),
        [
            "web.1: starting, waiting for port".to_string(),
            "worker.1: waiting for web".to_string()
        ]
    );
    let run = b.core.instance(1).run;
    let effects = b.event(Event::Ready { index: 1, run });
    b.spawn_all(&effects);
    assert!(b.core.not_ready().is_empty());
}
