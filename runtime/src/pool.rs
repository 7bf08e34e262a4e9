//! A pool of OS threads for guest threads.
//!
//! Creating an OS thread costs tens of microseconds, a large part of a
//! `pthread_create` + `pthread_join`. A worker that finished a guest thread
//! parks for a while waiting for the next one; an idle worker ends after
//! [`IDLE_TIMEOUT`].

use crate::locks::Locked as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

pub type Job = Box<dyn FnOnce() + Send + 'static>;

/// How long an idle worker waits for work before its OS thread ends.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a worker that just became idle polls for the next job before
/// it parks.
const SPIN: Duration = Duration::from_micros(50);

/// Native stack of a worker: room for the guest's frames plus the host
/// functions it calls.
const WORKER_STACK_SIZE: usize = crate::wasm_stack::THREAD_STACK;

/// OS threads of all pools that live now.
static LIVE_THREADS: AtomicUsize = AtomicUsize::new(0);

/// Memory mappings one guest thread takes, with room to spare (stack,
/// guard page, signal stack, its instance's tables): measured at about 6.
const MAPPINGS_PER_THREAD: usize = 10;

/// How many OS threads the pools may have at once: fewer than the kernel
/// allows. Past the kernel's mapping limit a new thread is created but
/// cannot set up its signal stack, and the Rust runtime aborts the whole
/// process; a `pthread_create` past this cap gets `EAGAIN` instead.
fn thread_cap() -> usize {
    static CAP: OnceLock<usize> = OnceLock::new();
    *CAP.get_or_init(|| {
        let read = |path: &str| {
            std::fs::read_to_string(path)
                .ok()
                .and_then(|s| s.trim().parse::<usize>().ok())
        };
        // Linux's defaults when the files cannot be read.
        let maps = read("/proc/sys/vm/max_map_count").unwrap_or(65_530);
        let threads = read("/proc/sys/kernel/threads-max").unwrap_or(usize::MAX);
        (maps / MAPPINGS_PER_THREAD).min(threads / 2).max(1)
    })
}

/// Takes a place for one more OS thread, or says why not.
fn take_thread_place() -> std::io::Result<()> {
    let cap = thread_cap();
    LIVE_THREADS
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
            (n < cap).then_some(n + 1)
        })
        .map(drop)
        .map_err(|_| {
            std::io::Error::new(
                std::io::ErrorKind::WouldBlock,
                format!("{cap} OS threads run already, the most this host allows"),
            )
        })
}

#[derive(Debug, Default, Clone)]
pub struct WorkerPool {
    idle: Arc<Mutex<IdleList>>,
}

#[derive(Debug, Default)]
struct IdleList {
    next_id: u64,
    workers: Vec<(u64, Sender<Job>)>,
    /// The program has ended: workers end once their job is done.
    closed: bool,
}

impl WorkerPool {
    /// Runs `job` on an idle worker, or on a new OS thread when none is idle.
    pub fn execute(&self, mut job: Job) -> std::io::Result<()> {
        loop {
            let next = self.lock().workers.pop();
            let Some((_, sender)) = next else { break };
            match sender.send(job) {
                Ok(()) => return Ok(()),
                // That worker has just timed out; try the next one.
                Err(mpsc::SendError(returned)) => job = returned,
            }
        }
        tracing::debug!("starting a new worker thread");
        take_thread_place()?;
        let pool = self.clone();
        let spawned = std::thread::Builder::new()
            .name("weft-worker".into())
            .stack_size(WORKER_STACK_SIZE)
            .spawn(move || {
                pool.work(job);
                LIVE_THREADS.fetch_sub(1, Ordering::SeqCst);
            });
        if let Err(e) = spawned {
            LIVE_THREADS.fetch_sub(1, Ordering::SeqCst);
            return Err(e);
        }
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, IdleList> {
        self.idle.locked()
    }

    /// Ends the idle workers now and the busy ones after their job (their
    /// program has ended; keeping them would only hold its memory).
    pub fn close(&self) {
        let idle = {
            let mut list = self.lock();
            list.closed = true;
            std::mem::take(&mut list.workers)
        };
        // Each worker's receiver sees its sender gone.
        drop(idle);
    }

    fn work(self, first: Job) {
        first();
        loop {
            // The idle list holds the only sender: once it is dropped
            // unused (the pool closed), the worker sees the channel gone.
            let (sender, receiver) = mpsc::channel::<Job>();
            let id = {
                let mut idle = self.lock();
                if idle.closed {
                    return;
                }
                let id = idle.next_id;
                idle.next_id += 1;
                idle.workers.push((id, sender));
                id
            };
            match self.wait(id, &receiver) {
                Some(job) => job(),
                None => return,
            }
        }
    }

    /// Waits for the next job; `None` once the worker timed out and no
    /// spawner holds its sender.
    fn wait(&self, id: u64, receiver: &Receiver<Job>) -> Option<Job> {
        // A program that creates threads one after another hands the next
        // one over within microseconds: spin briefly before sleeping, which
        // saves the wake-up of a parked OS thread.
        let spin_until = std::time::Instant::now() + SPIN;
        while std::time::Instant::now() < spin_until {
            match receiver.try_recv() {
                Ok(job) => return Some(job),
                Err(mpsc::TryRecvError::Disconnected) => return None,
                Err(mpsc::TryRecvError::Empty) => std::hint::spin_loop(),
            }
        }
        match receiver.recv_timeout(IDLE_TIMEOUT) {
            Ok(job) => Some(job),
            Err(RecvTimeoutError::Disconnected) => None,
            Err(RecvTimeoutError::Timeout) => {
                let mut idle = self.lock();
                if let Some(pos) = idle.workers.iter().position(|(w, _)| *w == id) {
                    idle.workers.swap_remove(pos);
                    None
                } else {
                    // A spawner took this worker just now and its job is on
                    // the way, or the pool closed and dropped the sender.
                    drop(idle);
                    receiver.recv().ok()
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn runs_every_job() {
        let pool = WorkerPool::default();
        let done = Arc::new(AtomicUsize::new(0));
        for _ in 0..100 {
            let (tx, rx) = mpsc::channel();
            let done = done.clone();
            pool.execute(Box::new(move || {
                done.fetch_add(1, Ordering::SeqCst);
                tx.send(std::thread::current().id()).unwrap();
            }))
            .unwrap();
            rx.recv().unwrap();
        }
        assert_eq!(done.load(Ordering::SeqCst), 100);
    }
}
