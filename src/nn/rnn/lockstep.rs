//! Lockstep: a few tasks that advance through the steps of a recurrence together, one thread per task
//! (or per group of tasks), with a barrier between steps.
//!
//! A fused recurrent layer runs each step as a handful of tasks (one per block of hidden units) that must
//! all finish step `s` before any starts step `s + 1`. A rayon parallel region per step costs a wake-up of
//! the other worker each time: on this 2-core machine that was 10-20% of the char-lstm step and most of
//! its run-to-run swing (futex wake-ups through the hypervisor). Here the threads live for the whole
//! sequence and meet at a spinning barrier (well under a microsecond when both are running; a waiter
//! that has spun for a while yields its core instead, so an oversubscribed machine still makes progress).
//!
//! Tasks exchange data through [`Exchange`]: per task, two slots (by step parity) behind mutexes. A task
//! writes its slot for step `s` and, after the barrier, the others read it during step `s + 1`; it writes
//! the other slot at `s + 1`, so a slot is never rewritten before everyone has passed the barrier after
//! the step that reads it. The mutexes are never contended in that schedule; they keep the sharing safe
//! without `unsafe`.
//!
//! The work of task `k` at step `s` depends only on `(k, s)` and the data, never on which thread runs it,
//! so results do not depend on the number of threads.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

/// Runs `step(k, s, &mut states[k])` for every task `k` and step `s = 0..steps`, all tasks of step `s`
/// before any of step `s + 1`. Uses up to `rayon::current_num_threads()` threads (the caller and scoped
/// threads spawned for the sequence; task `k` runs on thread `k % threads`); with one thread, or one
/// task, everything runs on the caller in order.
///
/// # Panics
/// If `step` panics (on any thread), after the other threads have stopped.
pub(crate) fn run<S: Send>(states: &mut [S], steps: usize, step: impl Fn(usize, usize, &mut S) + Sync) {
    let threads = rayon::current_num_threads().min(states.len()).max(1);
    if threads == 1 || steps == 0 {
        for s in 0..steps {
            for (k, st) in states.iter_mut().enumerate() {
                step(k, s, st);
            }
        }
        return;
    }
    let mut groups: Vec<Vec<(usize, &mut S)>> = (0..threads).map(|_| Vec::new()).collect();
    for (k, st) in states.iter_mut().enumerate() {
        groups[k % threads].push((k, st));
    }
    let barrier = SpinBarrier::new(threads);
    let (barrier, step) = (&barrier, &step);
    std::thread::scope(|scope| {
        let mut groups = groups.into_iter();
        let mine = groups.next();
        for group in groups {
            scope.spawn(move || run_group(group, steps, step, barrier));
        }
        if let Some(group) = mine {
            run_group(group, steps, step, barrier);
        }
    });
}

/// One thread's share of [`run`]: its tasks, step by step, meeting the others at the barrier.
fn run_group<S>(
    mut group: Vec<(usize, &mut S)>,
    steps: usize,
    step: &(impl Fn(usize, usize, &mut S) + Sync),
    barrier: &SpinBarrier,
) {
    let _abort = AbortOnUnwind(barrier);
    for s in 0..steps {
        for (k, st) in group.iter_mut() {
            step(*k, s, st);
        }
        if s + 1 < steps {
            barrier.wait(s + 1);
        }
    }
}

/// A barrier for a fixed number of threads that is passed once per step: `arrived` only grows, and
/// barrier number `g` (1, 2, ...) is passed when `parties * g` arrivals have been counted.
struct SpinBarrier {
    parties: usize,
    arrived: AtomicUsize,
    /// Set when a thread unwinds, so the others stop waiting for it.
    aborted: AtomicBool,
}

/// How long a waiter spins before it starts yielding its core: longer than the usual imbalance between
/// the tasks of a step (a few microseconds), short enough not to hold a core for long from a partner
/// that was preempted (another process on the machine).
const SPIN: std::time::Duration = std::time::Duration::from_micros(20);

impl SpinBarrier {
    fn new(parties: usize) -> SpinBarrier {
        SpinBarrier { parties, arrived: AtomicUsize::new(0), aborted: AtomicBool::new(false) }
    }

    /// Waits at barrier number `generation` (the first is 1). Release/acquire on `arrived` orders every
    /// write before the barrier before every read after it.
    fn wait(&self, generation: usize) {
        self.arrived.fetch_add(1, Ordering::AcqRel);
        let target = self.parties * generation;
        let mut start: Option<std::time::Instant> = None;
        let (mut spins, mut yielding) = (0u32, false);
        while self.arrived.load(Ordering::Acquire) < target {
            if self.aborted.load(Ordering::Relaxed) {
                panic!("lockstep: a task on another thread panicked");
            }
            if yielding {
                std::thread::yield_now();
                continue;
            }
            std::hint::spin_loop();
            spins = spins.wrapping_add(1);
            // The clock only every 64 spins (reading it costs ~20 ns).
            if spins % 64 == 0 {
                yielding = start.get_or_insert_with(std::time::Instant::now).elapsed() > SPIN;
            }
        }
    }
}

/// Marks the barrier aborted if its thread unwinds, so the other threads do not wait forever.
struct AbortOnUnwind<'a>(&'a SpinBarrier);

impl Drop for AbortOnUnwind<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.aborted.store(true, Ordering::Relaxed);
        }
    }
}

/// Per task, two buffers indexed by step parity, through which the tasks of a [`run`] pass data from
/// one step to the next (see the module docs).
pub(crate) struct Exchange<T> {
    slots: Vec<[Mutex<Vec<T>>; 2]>,
}

impl<T: Clone> Exchange<T> {
    /// `tasks` tasks, each slot `len(k)` copies of `fill`.
    pub(crate) fn new(tasks: usize, len: impl Fn(usize) -> usize, fill: T) -> Exchange<T> {
        let slot = |k: usize| Mutex::new(vec![fill.clone(); len(k)]);
        Exchange { slots: (0..tasks).map(|k| [slot(k), slot(k)]).collect() }
    }

    /// Task `k`'s slot for step `s`: written by task `k` during step `s`, read by the others during the
    /// step after.
    pub(crate) fn slot(&self, k: usize, s: usize) -> MutexGuard<'_, Vec<T>> {
        // A poisoned slot means a task panicked mid-write; `run` is already unwinding with that panic.
        self.slots[k][s % 2].lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A recurrence where each task needs every task's value from the step before: x_k(s+1) = sum_j x_j(s)
    /// + k. Run on 1, 2 and 3 threads, it must give the sequential result.
    #[test]
    fn tasks_see_each_others_previous_step() {
        let (tasks, steps) = (3, 50);
        let expected = {
            let mut x = vec![1u64; tasks];
            for _ in 1..steps {
                let sum: u64 = x.iter().sum::<u64>() % 1_000_003;
                x = (0..tasks as u64).map(|k| sum + k).collect();
            }
            x
        };
        for threads in 1..=3 {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            let ex = Exchange::new(tasks, |_| 1, 0u64);
            let mut states = vec![0u64; tasks];
            pool.install(|| {
                run(&mut states, steps, |k, s, x| {
                    *x = if s == 0 {
                        1
                    } else {
                        (0..tasks).map(|j| ex.slot(j, s - 1)[0]).sum::<u64>() % 1_000_003 + k as u64
                    };
                    ex.slot(k, s)[0] = *x;
                })
            });
            assert_eq!(states, expected, "{threads} threads");
        }
    }

    #[test]
    fn zero_steps_and_one_task_run_on_the_caller() {
        let mut states = vec![0usize; 1];
        run(&mut states, 0, |_, _, x| *x += 1);
        assert_eq!(states, [0]);
        run(&mut states, 4, |k, s, x| *x += k + s);
        assert_eq!(states, [6]);
    }

    #[test]
    fn a_panicking_task_stops_the_others() {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            pool.install(|| {
                let mut states = vec![0usize; 2];
                run(&mut states, 100, |k, s, _| {
                    if k == 1 && s == 10 {
                        panic!("task 1 fails at step 10");
                    }
                })
            })
        }));
        assert!(result.is_err());
    }
}
