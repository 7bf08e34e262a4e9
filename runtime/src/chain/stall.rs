//! The stall watch: a warning for a chained thread that runs long
//! without synchronising while every other thread waits.

use crate::locks::Locked as _;
use std::io::Write as _;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::support::{ChainSupport, support};
use crate::process::{Process, ThreadMemory};

/// How often the stall watch looks at the running chained threads.
pub(super) const STALL_LOOK: std::time::Duration = std::time::Duration::from_millis(250);

/// A chained thread registered with the stall watch while it runs.
pub(super) struct Watched<'a> {
    pub(super) chain: &'a ChainSupport,
    pub(super) tid: u32,
}

impl Drop for Watched<'_> {
    fn drop(&mut self) {
        self.chain.running.locked().remove(&self.tid);
    }
}

impl ChainSupport {
    /// Registers chained thread `tid` with the stall watch (started with
    /// the first one) until the guard drops.
    pub(super) fn watch<'a>(
        &'a self,
        process: &Arc<Process>,
        tid: u32,
        memory: &Arc<ThreadMemory>,
    ) -> Option<Watched<'a>> {
        let limit = process.start_config().stall_warning?;
        self.watching.call_once(|| {
            let process = Arc::downgrade(process);
            let spawned = std::thread::Builder::new()
                .name("weft-stall-watch".into())
                .spawn(move || watch_stalls(&process, limit));
            if let Err(e) = spawned {
                tracing::debug!("no stall watch: {e}");
            }
        });
        self.running.locked().insert(tid, Arc::downgrade(memory));
        Some(Watched { chain: self, tid })
    }

    /// Warns once about chained thread `tid` if it has not synchronised
    /// for `limit` while every other thread waits: it may be spinning on a
    /// plain variable, whose change it never sees on its copy. A long
    /// computation looks the same, hence a warning, not an end.
    pub(super) fn check_stall(
        &self,
        process: &Process,
        tid: u32,
        memory: &ThreadMemory,
        limit: Duration,
    ) {
        let Some(origin) = &memory.origin else {
            return;
        };
        let quiet = origin.last_sync.locked().elapsed();
        if quiet < limit
            || origin.stall_warned.load(Ordering::Relaxed)
            || self.sync.is_waiting(tid)
            || !self.sync.all_others_wait(process.running_threads())
            || origin.stall_warned.swap(true, Ordering::Relaxed)
        {
            return;
        }
        let _ = writeln!(
            std::io::stderr(),
            "weft: thread {tid} has run {}s without synchronising while every other thread waits: in chain mode it sees their writes only when it synchronises, so if it waits for a plain variable it waits forever (use an atomic or a lock; --timeout ends the program)",
            quiet.as_secs()
        );
    }
}

/// The stall watch of one program: looks at its running chained threads
/// until the process is gone.
pub(super) fn watch_stalls(process: &std::sync::Weak<Process>, limit: Duration) {
    loop {
        std::thread::sleep(STALL_LOOK);
        let Some(process) = process.upgrade() else {
            return;
        };
        let Some(chain) = support(&process) else {
            return;
        };
        let running: Vec<(u32, Arc<ThreadMemory>)> = chain
            .running
            .locked()
            .iter()
            .filter_map(|(tid, memory)| Some((*tid, memory.upgrade()?)))
            .collect();
        for (tid, memory) in running {
            chain.check_stall(&process, tid, &memory, limit);
        }
    }
}
