//! The same behaviour from every global tier: the embedded one, and a Redis
//! server when `WEFT_TEST_REDIS` names one (`.ci/run` starts one; under
//! CI the variable is required).

use std::sync::Arc;
use std::time::Duration;

use weft_runtime::redis::RedisGlobal;
use weft_runtime::state::{
    EmbeddedGlobal, GlobalTier, LockKind, StateError, StateHost, StateLimits, Tier,
};

/// Global tiers to test, each with a fresh key prefix (a Redis server may
/// hold keys of earlier runs).
fn tiers() -> Vec<(&'static str, Arc<dyn GlobalTier>)> {
    let mut tiers: Vec<(&'static str, Arc<dyn GlobalTier>)> =
        vec![("embedded", Arc::new(EmbeddedGlobal::default()))];
    match std::env::var("WEFT_TEST_REDIS") {
        Ok(url) => tiers.push(("redis", Arc::new(RedisGlobal::new(&url).unwrap()))),
        Err(_) if std::env::var_os("CI").is_some() => {
            panic!("WEFT_TEST_REDIS must name the Redis server .ci/run started")
        }
        Err(_) => eprintln!("WEFT_TEST_REDIS is not set: testing the embedded tier only"),
    }
    tiers
}

fn unique(name: &str) -> String {
    static RUN: std::sync::OnceLock<u128> = std::sync::OnceLock::new();
    let run = RUN.get_or_init(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    });
    format!("test-{run}-{name}")
}

fn host(global: &Arc<dyn GlobalTier>, lock_timeout: Duration) -> StateHost {
    StateHost::new(
        global.clone(),
        StateLimits {
            lock_timeout,
            ..StateLimits::default()
        },
    )
}

#[test]
fn local_reads_pull_and_pushes_reach_the_global_tier() {
    for (tier, global) in tiers() {
        let k = &unique("values");
        let a = host(&global, Duration::from_secs(5));
        let b = host(&global, Duration::from_secs(5));
        assert_eq!(a.get(k), Err(StateError::NotFound), "{tier}");
        a.set(k, b"hello world").unwrap();
        assert_eq!(
            b.get(k),
            Err(StateError::NotFound),
            "{tier}: not pushed yet"
        );
        a.push(k).unwrap();
        assert_eq!(b.get(k).unwrap(), b"hello world", "{tier}");
        assert_eq!(b.get_range(k, 6, 5).unwrap(), b"world", "{tier}");
        assert_eq!(b.get_range(k, 6, 6), Err(StateError::OutOfBounds), "{tier}");

        // A partial push sends only what changed; b's copy stays until pull.
        a.set_range(k, 0, b"J").unwrap();
        a.set_range(k, 13, b"!").unwrap();
        a.push_partial(k).unwrap();
        assert_eq!(
            global.get(k).unwrap().unwrap(),
            b"Jello world\0\0!",
            "{tier}"
        );
        assert_eq!(b.get(k).unwrap(), b"hello world", "{tier}");
        // A partial pull brings just the range.
        b.pull_range(k, 13, 1).unwrap();
        assert_eq!(b.get(k).unwrap(), b"hello world\0\0!", "{tier}");
        assert_eq!(
            b.pull_range(k, 13, 2),
            Err(StateError::OutOfBounds),
            "{tier}"
        );
        assert_eq!(
            b.pull_range(k, u64::MAX, 2),
            Err(StateError::OutOfBounds),
            "{tier}"
        );
        b.pull(k).unwrap();
        assert_eq!(b.size(k).unwrap(), 14, "{tier}");

        // Partial pushes of different bytes from two hosts keep both.
        a.set_range(k, 1, b"E").unwrap();
        b.set_range(k, 2, b"L").unwrap();
        a.push_partial(k).unwrap();
        b.push_partial(k).unwrap();
        assert_eq!(&global.get(k).unwrap().unwrap()[..4], b"JELl", "{tier}");

        // Partial push of a value the global tier lost: sent whole (a's
        // copy never saw b's change).
        global.delete(k).unwrap();
        a.set_range(k, 0, b"x").unwrap();
        a.push_partial(k).unwrap();
        assert_eq!(
            global.get(k).unwrap().unwrap(),
            b"xEllo world\0\0!",
            "{tier}"
        );

        a.delete(k).unwrap();
        assert_eq!(global.get(k).unwrap(), None, "{tier}");
    }
}

#[test]
fn appended_records_keep_their_order() {
    for (tier, global) in tiers() {
        let k = &unique("log");
        let state = host(&global, Duration::from_secs(5));
        state.append(k, b"one").unwrap();
        state.append(k, b"").unwrap();
        state.append(k, b"three").unwrap();
        assert_eq!(state.appended_count(k).unwrap(), 3, "{tier}");
        assert_eq!(state.read_appended(k, 2).unwrap(), b"three", "{tier}");
        assert_eq!(state.read_appended(k, 1).unwrap(), b"", "{tier}");
        assert_eq!(
            state.read_appended(k, 3),
            Err(StateError::OutOfBounds),
            "{tier}"
        );
        state.clear_appended(k).unwrap();
        assert_eq!(state.appended_count(k).unwrap(), 0, "{tier}");
    }
}

#[test]
fn locks_exclude_writers_and_time_out() {
    for (name, global) in tiers() {
        let k = &unique("locks");
        let state = host(&global, Duration::from_millis(50));
        for tier in [Tier::Local, Tier::Global] {
            use LockKind::{Read, Write};
            let (timed_out, not_locked) = (Err(StateError::TimedOut), Err(StateError::NotLocked));
            // (lock or unlock, kind, owner, expected), in order.
            let steps = [
                (true, Read, 1, Ok(())),
                (true, Read, 2, Ok(())),
                (true, Write, 3, timed_out),
                (false, Write, 1, not_locked),
                (false, Read, 1, Ok(())),
                (false, Read, 1, not_locked),
                (false, Read, 2, Ok(())),
                (true, Write, 3, Ok(())),
                (true, Read, 1, timed_out),
                (false, Write, 1, not_locked),
                (false, Write, 3, Ok(())),
            ];
            for (step, (lock, kind, owner, expected)) in steps.into_iter().enumerate() {
                let got = if lock {
                    state.lock(k, tier, kind, owner)
                } else {
                    state.unlock(k, tier, kind, owner)
                };
                assert_eq!(got, expected, "{name}, {tier:?}, step {step}");
            }
        }
    }
}

#[test]
fn a_global_write_lock_prevents_lost_updates() {
    for (tier, global) in tiers() {
        let k = &unique("counter");
        let hosts: Vec<Arc<StateHost>> = (0..3)
            .map(|_| Arc::new(host(&global, Duration::from_secs(30))))
            .collect();
        hosts[0].set(k, &0u64.to_le_bytes()).unwrap();
        hosts[0].push(k).unwrap();
        let workers: Vec<_> = (0..6u64)
            .map(|owner| {
                let (host, k) = (hosts[owner as usize % 3].clone(), k.clone());
                std::thread::spawn(move || {
                    for _ in 0..100 {
                        host.lock(&k, Tier::Global, LockKind::Write, owner).unwrap();
                        host.pull(&k).unwrap();
                        let n = u64::from_le_bytes(host.get(&k).unwrap().try_into().unwrap());
                        host.set(&k, &(n + 1).to_le_bytes()).unwrap();
                        host.push(&k).unwrap();
                        host.unlock(&k, Tier::Global, LockKind::Write, owner)
                            .unwrap();
                    }
                })
            })
            .collect();
        for worker in workers {
            worker.join().unwrap();
        }
        let n = u64::from_le_bytes(global.get(k).unwrap().unwrap().try_into().unwrap());
        assert_eq!(n, 600, "{tier}");
    }
}
