//! How many processors a program is told it has (`weft:threads`
//! `available-parallelism`, which libweft's `sysconf(_SC_NPROCESSORS_*)`,
//! `get_nprocs`, the affinity calls, OpenMP's `omp_get_num_procs` and,
//! through the load-time rewrite of std_answers.rs, Rust's
//! `available_parallelism` ask):
//! the threads it can run at once. In local mode every thread is an OS
//! thread over one memory, so that is the host's cores. In chain mode it is
//! the worker slots at home plus every peer's slots, so a program that
//! sizes its pool by the answer fills the cluster it runs on.

use crate::start::ThreadMode;

/// The processor count for `mode`: `host_cores` in local mode; in chain
/// mode `home_slots` plus `peer_slots` (0 without peers). Never 0.
pub fn processors(
    mode: ThreadMode,
    host_cores: usize,
    home_slots: usize,
    peer_slots: usize,
) -> usize {
    let n = match mode {
        ThreadMode::Local => host_cores,
        ThreadMode::Chain => home_slots.saturating_add(peer_slots),
    };
    n.max(1)
}

/// The host's cores (1 when the host cannot say), asked once: the
/// standard library reads the cgroup's files each time, a cost every
/// process start paid.
pub fn host_cores() -> usize {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_mode_answers_the_hosts_cores_whatever_the_slots() {
        assert_eq!(processors(ThreadMode::Local, 8, 2, 12), 8);
    }

    #[test]
    fn chain_mode_answers_home_slots_plus_every_peers() {
        assert_eq!(processors(ThreadMode::Chain, 8, 2, 0), 2);
        assert_eq!(processors(ThreadMode::Chain, 8, 2, 2 * 3), 8);
    }

    #[test]
    fn the_answer_is_never_zero() {
        assert_eq!(processors(ThreadMode::Local, 0, 0, 0), 1);
        assert_eq!(processors(ThreadMode::Chain, 0, 0, 0), 1);
    }
}
