//! Exits, signals, timeouts, restarts and control requests.

use std::path::Path;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use super::*;
use crate::control::{Reply, Request};
use crate::formation::{self, Formation};
use crate::policy::{Policy, Restart, TypeRules};
use crate::reaper::Exit;
use crate::supervisor::core::{Core, Effect, Event, KILL_GRACE, LINGER, Phase, Rules};
use crate::supervisor::instance::State;

#[test]
fn any_exit_stops_all_with_its_status() {
    let mut b = bench(TWO, "all=1", &[], &[]);
    let worker = b.pid(1);
    let effects = b.exit(0, Exit::Code(3));
    // The exit line waits for the output, which closes after the exit is seen.
    assert_eq!(
        said(&effects),
        [
            "sending SIGTERM to all processes",
            "web.1 exited with code 3"
        ]
    );
    assert_eq!(
        signalled(&effects),
        [(worker, Signal::SIGTERM), (worker, Signal::SIGCONT)]
    );
    assert!(effects.contains(&Effect::SignalStrays(Signal::SIGTERM)));
    assert!(!b.core.quiet());
    b.exit(1, Exit::Signal(15));
    assert!(b.core.quiet());
    assert_eq!(b.core.status(), 3);
}

#[test]
fn second_signal_kills_at_once_and_keeps_the_first_status() {
    let mut b = bench(TWO, "all=1", &[], &[]);
    let (web, worker) = (b.pid(0), b.pid(1));
    let first = b.event(Event::Stop(Signal::SIGTERM));
    assert_eq!(said(&first)[0], "SIGTERM received, stopping");
    let second = b.event(Event::Stop(Signal::SIGINT));
    assert_eq!(
        said(&second),
        [
            "SIGINT received again, killing",
            "sending SIGKILL to web.1, worker.1"
        ]
    );
    assert_eq!(
        signalled(&second),
        [(web, Signal::SIGKILL), (worker, Signal::SIGKILL)]
    );
    assert!(matches!(b.core.phase(), Phase::Killing { .. }));
    assert_eq!(b.core.status(), 143);
}

#[test]
fn hangup_during_a_stop_does_not_kill() {
    let mut b = bench(TWO, "all=1", &[], &[]);
    b.event(Event::Stop(Signal::SIGHUP));
    let again = b.event(Event::Stop(Signal::SIGHUP));
    assert!(signalled(&again).is_empty());
    assert_eq!(b.core.status(), 129);
}

#[test]
fn the_timeout_escalates_to_sigkill() {
    let mut b = bench(TWO, "all=1", &[], &[]);
    let web = b.pid(0);
    b.event(Event::Stop(Signal::SIGTERM));
    b.exit(1, Exit::Signal(15));
    assert!(signalled(&b.advance(Duration::from_millis(4999))).is_empty());
    let effects = b.advance(Duration::from_millis(1));
    assert_eq!(said(&effects), ["sending SIGKILL to web.1"]);
    assert_eq!(signalled(&effects), [(web, Signal::SIGKILL)]);
    assert!(effects.contains(&Effect::SignalStrays(Signal::SIGKILL)));
    b.exit(0, Exit::Signal(9));
    assert!(b.core.quiet());
}

#[test]
fn ganger_gives_up_on_output_that_never_closes() {
    let mut b = bench("web: serve\n", "all=1", &[], &[]);
    b.event(Event::Stop(Signal::SIGTERM));
    b.advance(TIMEOUT);
    let pid = b.pid(0);
    b.event(Event::Exited {
        pid,
        exit: Exit::Signal(9),
    });
    // A grandchild holds the pipe: not quiet, but the kill grace runs out.
    assert!(!b.core.quiet());
    assert_eq!(
        b.core.phase(),
        Phase::Killing {
            deadline: b.now + KILL_GRACE
        }
    );
}

#[test]
fn restart_backs_off_doubling_and_starts_over_after_a_long_run() {
    let mut b = bench(TWO, "all=1", &["web"], &[]);
    let first = b.pid(0);
    let effects = b.exit(0, Exit::Code(1));
    assert_eq!(
        said(&effects),
        ["web.1 exited with code 1, restarting in 0.5s (restart 1)"]
    );
    assert_eq!(b.core.phase(), Phase::Running);
    assert!(b.advance(Duration::from_millis(499)).is_empty());
    let effects = b.advance(Duration::from_millis(1));
    assert_eq!(effects, [Effect::Spawn(0)]);
    b.spawn_all(&effects);
    let second = b.pid(0);
    assert_ne!(first, second);
    let effects = b.exit(0, Exit::Code(1));
    assert_eq!(
        said(&effects),
        ["web.1 exited with code 1, restarting in 1s (restart 2)"]
    );
    let effects = b.advance(Duration::from_secs(1));
    b.spawn_all(&effects);
    b.advance(Duration::from_secs(31));
    let effects = b.exit(0, Exit::Code(1));
    assert_eq!(
        said(&effects),
        ["web.1 exited with code 1, restarting in 0.5s (restart 3)"]
    );
}

#[test]
fn nothing_restarts_during_a_shutdown() {
    let mut b = bench(TWO, "all=1", &["web"], &[]);
    b.exit(0, Exit::Code(1));
    b.event(Event::Stop(Signal::SIGTERM));
    assert!(matches!(b.core.instance(0).state, State::Exited(_)));
    let effects = b.advance(Duration::from_secs(1));
    assert!(!effects.contains(&Effect::Spawn(0)));
}

#[test]
fn can_die_types_exit_alone_and_the_last_one_ends_the_app() {
    let mut b = bench(TWO, "all=1", &[], &["web", "worker"]);
    let effects = b.exit(0, Exit::Code(0));
    assert_eq!(said(&effects), ["web.1 exited with code 0"]);
    assert_eq!(b.core.phase(), Phase::Running);
    let effects = b.exit(1, Exit::Code(4));
    assert_eq!(said(&effects), ["worker.1 exited with code 4"]);
    assert!(b.core.quiet());
    assert_eq!(b.core.status(), 4);
}

#[test]
fn a_reaped_pid_is_never_signalled_again() {
    let mut b = bench("once: true\nweb: serve\n", "all=1", &[], &["once"]);
    let once = b.pid(0);
    let effects = b.exit(0, Exit::Code(0));
    // Its group is cleared (members found through /proc, not by its number)...
    assert!(effects.contains(&Effect::ClearGroup {
        pgid: once,
        sig: Signal::SIGTERM,
        last: false
    }));
    // ... and no stop, signal or forward ever names it again.
    let mut all = b.event(Event::Forward(Signal::SIGUSR1));
    all.extend(b.event(Event::Stop(Signal::SIGTERM)));
    all.extend(b.event(Event::Stop(Signal::SIGTERM)));
    all.extend(b.advance(TIMEOUT));
    assert!(signalled(&all).iter().all(|(pid, _)| *pid != once));
    assert!(!b.core.live_groups().contains(&once));
    // Exits of pids ganger does not own (orphans) change nothing.
    assert!(
        b.event(Event::Exited {
            pid: once,
            exit: Exit::Code(0)
        })
        .is_empty()
    );
}

#[test]
fn leftovers_of_an_exited_run_are_killed_after_the_timeout() {
    let mut b = bench("once: true\nweb: serve\n", "all=1", &[], &["once"]);
    let once = b.pid(0);
    b.exit(0, Exit::Code(0));
    let effects = b.advance(TIMEOUT);
    assert_eq!(
        effects,
        [Effect::ClearGroup {
            pgid: once,
            sig: Signal::SIGKILL,
            last: true
        }]
    );
}

#[test]
fn the_exit_line_waits_for_the_output_but_not_forever() {
    let mut b = bench(TWO, "all=1", &[], &["web"]);
    let pid = b.pid(0);
    let effects = b.event(Event::Exited {
        pid,
        exit: Exit::Code(0),
    });
    assert!(said(&effects).is_empty());
    let effects = b.advance(LINGER);
    assert_eq!(said(&effects), ["web.1 exited with code 0"]);
}

#[test]
fn a_restarted_runs_old_stream_does_not_count_for_the_new_one() {
    let mut b = bench(TWO, "all=1", &["web"], &[]);
    let pid = b.pid(0);
    b.event(Event::Exited {
        pid,
        exit: Exit::Code(1),
    });
    let effects = b.advance(Duration::from_millis(500));
    b.spawn_all(&effects);
    // The first run's stream closes late: the new run still has its own open.
    b.event(Event::StreamClosed { index: 0, run: 1 });
    assert_eq!(b.core.instance(0).open_streams, 1);
}

#[test]
fn stop_one_instance_and_the_app_goes_on() {
    let mut b = bench(TWO, "web=2,worker=1", &[], &[]);
    let web2 = b.pid(1);
    let (reply, effects) = b.command(Request::Stop {
        targets: vec!["web.2".into()],
    });
    assert_eq!(reply, Reply::done("stopping web.2"));
    assert_eq!(
        signalled(&effects),
        [(web2, Signal::SIGTERM), (web2, Signal::SIGCONT)]
    );
    let effects = b.exit(1, Exit::Signal(15));
    assert_eq!(said(&effects), ["web.2 was killed by SIGTERM"]);
    assert_eq!(b.core.instance(1).state, State::Stopped);
    assert_eq!(b.core.phase(), Phase::Running);
}

#[test]
fn a_stop_that_takes_too_long_is_killed() {
    let mut b = bench(TWO, "all=1", &[], &[]);
    let web = b.pid(0);
    b.command(Request::Stop {
        targets: vec!["web".into()],
    });
    let effects = b.advance(TIMEOUT);
    assert_eq!(signalled(&effects), [(web, Signal::SIGKILL)]);
    assert_eq!(b.core.phase(), Phase::Running);
}

#[test]
fn restart_starts_the_same_instance_again() {
    let mut b = bench(TWO, "all=1", &[], &[]);
    let web = b.pid(0);
    let (reply, _) = b.command(Request::Restart {
        targets: vec!["web.1".into()],
    });
    assert_eq!(reply, Reply::done("restarting web.1"));
    let effects = b.exit(0, Exit::Signal(15));
    assert!(effects.contains(&Effect::Spawn(0)));
    b.spawn_all(&effects);
    assert_ne!(b.pid(0), web);
    assert_eq!(b.core.instance(0).restarts, 1);
    assert_eq!(b.core.instance(0).spec.port, 5000);
}

#[test]
fn scale_up_and_down() {
    let mut b = bench(TWO, "all=1", &[], &[]);
    let (reply, effects) = b.command(Request::Scale {
        spec: "web=3".into(),
    });
    assert_eq!(reply, Reply::done("scaled web 1 -> 3"));
    b.spawn_all(&effects);
    let ports: Vec<u16> = b.core.instances().iter().map(|i| i.spec.port).collect();
    assert_eq!(ports, [5000, 5100, 5001, 5002]);
    let web3 = b.pid(3);
    let (reply, effects) = b.command(Request::Scale {
        spec: "all = 1".into(),
    });
    assert_eq!(reply, Reply::done("scaled web 3 -> 1, worker 1 -> 1"));
    assert!(signalled(&effects).contains(&(web3, Signal::SIGTERM)));
    b.exit(3, Exit::Signal(15));
    assert_eq!(b.core.instance(3).state, State::Removed);
}

#[test]
fn scale_checks_ports_before_allocating_anything() {
    let mut b = bench(TWO, "all=1", &[], &[]);
    for spec in ["web=18446744073709551615", "web=100000000000", "web=60537"] {
        let (reply, effects) = b.command(Request::Scale { spec: spec.into() });
        assert!(!reply.ok, "{spec}");
        assert!(effects.is_empty());
    }
    assert_eq!(b.core.instances().len(), 2);
}

/// A core for [`TWO`] that has asked for its spawns, none of them done yet.
fn booted_but_not_spawned() -> Core {
    let procfile = crate::procfile::parse(Path::new("Procfile"), TWO).expect("procfile");
    let plan = formation::plan(&procfile, &Formation::default(), 5000, &[]).expect("plan");
    let rules = Rules {
        policy: Policy::default(),
        timeout: TIMEOUT,
        order: crate::supervisor::core::Order::default(),
    };
    let mut core = Core::new(procfile, 5000, rules, plan);
    core.boot();
    core
}

#[test]
fn a_failed_spawn_stops_the_app_only_at_start_up() {
    let now = Instant::now();
    let mut core = booted_but_not_spawned();
    let effects = core.handle(
        Event::SpawnFailed {
            index: 0,
            error: "no memory".into(),
        },
        now,
    );
    assert_eq!(said(&effects)[0], "cannot start web.1: no memory");
    assert_eq!(core.status(), 1);
    assert!(!core.wants_spawn(1));

    let mut b = bench(TWO, "all=1", &[], &[]);
    let (_, effects) = b.command(Request::Scale {
        spec: "web=2".into(),
    });
    assert_eq!(effects[0], Effect::Spawn(2));
    b.event(Event::SpawnFailed {
        index: 2,
        error: "no memory".into(),
    });
    assert_eq!(b.core.phase(), Phase::Running);
    assert_eq!(b.core.instance(2).state, State::Failed);
}

#[test]
fn a_stop_during_start_up_reaches_what_is_spawned_after_it() {
    let now = Instant::now();
    let mut core = booted_but_not_spawned();
    core.handle(Event::Stop(Signal::SIGTERM), now);
    assert!(!core.wants_spawn(0));
    assert_eq!(core.status(), 143);
    assert!(core.quiet());
}

#[test]
fn ps_rows_show_state_pid_and_port() {
    let mut b = bench(TWO, "all=1", &["worker"], &[]);
    b.exit(1, Exit::Code(2));
    let (reply, _) = b.command(Request::Ps);
    let rows = reply.instances.expect("rows");
    assert_eq!(rows[0].state, "running");
    assert!(rows[0].pid.is_some());
    assert_eq!(rows[1].state, "restarting in 1s");
    assert_eq!(rows[1].pid, None);
    assert_eq!(rows[1].port, 5100);
}

#[test]
fn each_type_gets_its_own_stop_signal_and_timeout() {
    let mut b = bench(TWO, "all=1", &[], &[]);
    b.core.rules.policy.types.insert(
        "web".into(),
        TypeRules {
            stop_signal: Signal::SIGINT,
            timeout: Some(Duration::from_millis(500)),
            ..TypeRules::default()
        },
    );
    let (web, worker) = (b.pid(0), b.pid(1));
    let effects = b.event(Event::Stop(Signal::SIGTERM));
    assert_eq!(said(&effects)[1], "sending each process its stop signal");
    assert!(signalled(&effects).contains(&(web, Signal::SIGINT)));
    assert!(signalled(&effects).contains(&(worker, Signal::SIGTERM)));
    let effects = b.advance(Duration::from_millis(500));
    assert_eq!(signalled(&effects), [(web, Signal::SIGKILL)]);
    let effects = b.advance(TIMEOUT);
    assert_eq!(signalled(&effects), [(worker, Signal::SIGKILL)]);
}

#[test]
fn oneshot_and_on_failure_types_decide_by_the_status() {
    let mut b = bench("task: t\nweb: w\nworker: k\n", "all=1", &[], &[]);
    let oneshot = TypeRules {
        oneshot: true,
        ..TypeRules::default()
    };
    let on_failure = TypeRules {
        restart: Restart::OnFailure,
        ..TypeRules::default()
    };
    b.core.rules.policy.types.insert("task".into(), oneshot);
    b.core
        .rules
        .policy
        .types
        .insert("worker".into(), on_failure);
    b.exit(0, Exit::Code(0));
    assert_eq!(b.core.phase(), Phase::Running);
    let effects = b.exit(2, Exit::Code(1));
    assert!(said(&effects)[0].contains("restarting in 0.5s"));
    let effects = b.advance(Duration::from_millis(500));
    b.spawn_all(&effects);
    b.exit(2, Exit::Code(0));
    assert_eq!(b.core.phase(), Phase::Running);
    b.exit(1, Exit::Code(0));
    assert!(b.core.quiet());
    assert_eq!(b.core.status(), 0);
}
