//! Runs work on many units at once: up to `jobs` threads, each taking the next unit whose
//! dependencies are done. A unit depends on the units of the same runtime and
//! architecture that it merges (a merged layer's members) or `requires`, when they are in
//! the same run. Results are handed back on the calling thread in the units' order, so
//! reports and `--json` lines come out as they would one unit after another.

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex};

use crate::unit::{Recipe, Unit};

/// How many units run at once when not told: the number of cores.
pub fn default_jobs() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

/// Runs `work` on every unit, at most `jobs` at a time and each after its dependencies,
/// and calls `done(index, result)` for each unit in order as soon as it and every unit
/// before it have finished.
pub fn each<T: Send>(units: &[Unit], jobs: usize, work: impl Fn(&Unit) -> T + Sync, done: impl FnMut(usize, T)) {
    // With several at once, `-v` output lines name their unit.
    let tagged = jobs > 1 && units.len() > 1;
    let work = |i: usize| crate::output::with_tag(tagged.then(|| units[i].label()), || work(&units[i]));
    run(&dependencies(units), jobs, work, done);
}

/// [`each`] over indices with their dependencies. A `work` that panics does not leave the
/// other threads and the caller waiting forever for its result: the panic is raised again
/// on the calling thread when its result is due.
fn run<T: Send>(deps: &[Vec<usize>], jobs: usize, work: impl Fn(usize) -> T + Sync, mut done: impl FnMut(usize, T)) {
    let n = deps.len();
    let state = Mutex::new(State {
        started: vec![false; n],
        finished: vec![false; n],
        results: (0..n).map(|_| None).collect(),
        running: 0,
    });
    let changed = Condvar::new();
    let workers = jobs.max(1).min(n);
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| loop {
                let i = {
                    let mut s = lock(&state);
                    loop {
                        match s.next(deps) {
                            Next::Run(i) => {
                                s.started[i] = true;
                                s.running += 1;
                                break Some(i);
                            }
                            Next::Wait => s = changed.wait(s).unwrap_or_else(|e| e.into_inner()),
                            Next::AllStarted => break None,
                        }
                    }
                };
                let Some(i) = i else { return };
                let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work(i)));
                let mut s = lock(&state);
                s.results[i] = Some(result);
                s.finished[i] = true;
                s.running -= 1;
                changed.notify_all();
            });
        }
        // Hand results back in order, on this thread.
        let mut ready = VecDeque::new();
        for next in 0..n {
            if ready.is_empty() {
                let mut s = lock(&state);
                while s.results[next].is_none() {
                    s = changed.wait(s).unwrap_or_else(|e| e.into_inner());
                }
                // Take every finished result in a row, to call `done` without the lock.
                let mut j = next;
                while j < n && s.results[j].is_some() {
                    ready.push_back(s.results[j].take().expect("checked above"));
                    j += 1;
                }
            }
            match ready.pop_front().expect("a result for each unit") {
                Ok(result) => done(next, result),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
    });
}

struct State<T> {
    started: Vec<bool>,
    finished: Vec<bool>,
    /// Finished results not yet handed back (`Err`: the work panicked).
    results: Vec<Option<std::thread::Result<T>>>,
    running: usize,
}

enum Next {
    Run(usize),
    Wait,
    AllStarted,
}

impl<T> State<T> {
    /// The first unit not started whose dependencies have finished. Should dependencies
    /// ever form a cycle (`layer` and `check` refuse `requires` cycles, merges cannot nest), the first waiting unit runs
    /// once nothing else is running, rather than every thread waiting forever.
    fn next(&self, deps: &[Vec<usize>]) -> Next {
        let mut waiting = None;
        for (i, d) in deps.iter().enumerate() {
            if self.started[i] {
                continue;
            }
            if d.iter().all(|&j| self.finished[j]) {
                return Next::Run(i);
            }
            waiting.get_or_insert(i);
        }
        match waiting {
            None => Next::AllStarted,
            Some(i) if self.running == 0 => Next::Run(i),
            Some(_) => Next::Wait,
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// For each unit, the indices of the units in the run it must wait for.
fn dependencies(units: &[Unit]) -> Vec<Vec<usize>> {
    units
        .iter()
        .map(|u| {
            let mut needs: Vec<&str> = u.layer.requires.iter().map(String::as_str).collect();
            if let Recipe::Merge { members } = &u.recipe {
                needs.extend(members.iter().map(|m| m.layer.name.as_str()));
            }
            units
                .iter()
                .enumerate()
                .filter(|(_, o)| (o.runtime, o.arch) == (u.runtime, u.arch) && needs.contains(&o.layer.name.as_str()))
                .map(|(j, _)| j)
                .collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(started: &[bool], finished: &[bool], running: usize) -> State<()> {
        State { started: started.to_vec(), finished: finished.to_vec(), results: vec![], running }
    }

    #[test]
    fn a_unit_waits_for_its_dependencies() {
        let deps = vec![vec![1], vec![]];
        assert!(matches!(state(&[false, false], &[false, false], 0).next(&deps), Next::Run(1)));
        assert!(matches!(state(&[false, true], &[false, false], 1).next(&deps), Next::Wait));
        assert!(matches!(state(&[false, true], &[false, true], 0).next(&deps), Next::Run(0)));
        assert!(matches!(state(&[true, true], &[false, true], 1).next(&deps), Next::AllStarted));
    }

    #[test]
    fn a_panicking_unit_is_raised_on_the_caller_instead_of_a_hang() {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            // Unit 1 panics; unit 2 waits for it; unit 0 is handed back first.
            let deps = vec![vec![], vec![], vec![1]];
            let mut seen = Vec::new();
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                run(&deps, 2, |i| if i == 1 { panic!("unit 1 fails") } else { i }, |i, v| seen.push((i, v)))
            }));
            tx.send((r.is_err(), seen)).unwrap();
        });
        let (panicked, seen) = rx.recv_timeout(std::time::Duration::from_secs(20)).expect("run hung");
        assert!(panicked);
        assert_eq!(seen, [(0, 0)]);
    }

    #[test]
    fn a_cycle_runs_one_unit_at_a_time_instead_of_waiting_forever() {
        let deps = vec![vec![1], vec![0]];
        assert!(matches!(state(&[false, false], &[false, false], 0).next(&deps), Next::Run(0)));
        assert!(matches!(state(&[true, false], &[false, false], 1).next(&deps), Next::Wait));
    }
}
