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

/// Threads that run without synchronising while others do not wait at
/// home (they may spin too, each on a variable another sets) are named
/// once no thread has synchronised for this many times the limit: longer
/// than for one thread alone, since threads that compute apart for a
/// long while look the same.
const ALL_QUIET_FACTOR: u32 = 3;

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

    /// Warns once about the chained threads of `running` that run on
    /// without synchronising when no thread has synchronised for `limit`
    /// (none at home, none of them): threads that spin together, each on a
    /// plain variable, are never all but one waiting, so
    /// [`Self::check_stall`] alone would leave the hang silent.
    fn check_all_quiet(&self, running: &[(u32, Arc<ThreadMemory>)], limit: Duration) {
        if self.all_quiet_warned.load(Ordering::Relaxed) || self.sync.quiet_for() < limit {
            return;
        }
        let mut quiet = Vec::new();
        for (tid, memory) in running {
            let Some(origin) = &memory.origin else {
                continue;
            };
            if self.sync.is_waiting(*tid) {
                continue;
            }
            if origin.last_sync.locked().elapsed() < limit {
                return;
            }
            // Named already, alone.
            if !origin.stall_warned.load(Ordering::Relaxed) {
                quiet.push(*tid);
            }
        }
        if quiet.is_empty() || self.all_quiet_warned.swap(true, Ordering::Relaxed) {
            return;
        }
        quiet.sort_unstable();
        let who = match quiet.len() {
            1 => format!("thread {} has", quiet[0]),
            _ => format!("threads {} have", and_list(&quiet)),
        };
        let _ = writeln!(
            std::io::stderr(),
            "weft: {who} run {}s without synchronising, and no other thread has synchronised meanwhile: in chain mode a thread sees others' writes only when it synchronises, so a thread that waits for a plain variable waits forever (use an atomic or a lock; --timeout ends the program)",
            limit.as_secs()
        );
    }
}

/// `1, 2 and 3`.
fn and_list(tids: &[u32]) -> String {
    let names: Vec<String> = tids.iter().map(u32::to_string).collect();
    match names.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
        _ => names.concat(),
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
        for (tid, memory) in &running {
            chain.check_stall(&process, *tid, memory, limit);
        }
        chain.check_all_quiet(&running, limit * ALL_QUIET_FACTOR);
    }
}
