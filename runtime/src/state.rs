//! Shared state (`wit/state.wit`): keys naming byte values, in a
//! host-local tier over an authoritative global tier.
//!
//! The local tier keeps one copy of a value per host for every function and
//! thread on it, and remembers which ranges were written since the last
//! push or pull (for `push-partial`). The global tier is behind
//! [`GlobalTier`]; [`EmbeddedGlobal`] keeps it in this process (the
//! single-host default). Locks in both tiers are readers-writer locks that
//! a guest holds across calls, so they are a table of owners rather than
//! guards; every wait has a deadline.

use crate::locks::Locked as _;
use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Why a state operation failed; the discriminants are those of the WIT
/// `state-error` enum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[repr(u8)]
pub enum StateError {
    #[error("no value for the key")]
    NotFound = 0,
    #[error("range outside the value")]
    OutOfBounds = 1,
    #[error("key or value too large")]
    TooLarge = 2,
    #[error("the lock is not held")]
    NotLocked = 3,
    #[error("the lock was not granted before its deadline")]
    TimedOut = 4,
    #[error("the global tier is unavailable")]
    Unavailable = 5,
}

impl StateError {
    /// The error with WIT discriminant `code`.
    pub fn from_code(code: u8) -> Option<Self> {
        [
            Self::NotFound,
            Self::OutOfBounds,
            Self::TooLarge,
            Self::NotLocked,
            Self::TimedOut,
            Self::Unavailable,
        ]
        .into_iter()
        .find(|e| *e as u8 == code)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockKind {
    Read,
    Write,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tier {
    Local,
    Global,
}

/// Who holds a lock: a thread of a process, unique within the host.
pub type Owner = u64;

/// Bounds on what guests may store.
#[derive(Debug, Clone)]
pub struct StateLimits {
    pub max_key_len: usize,
    pub max_value_len: u64,
    /// How long a lock request waits before `timed-out`.
    pub lock_timeout: Duration,
}

impl Default for StateLimits {
    fn default() -> Self {
        Self {
            max_key_len: 1024,
            max_value_len: 1 << 30,
            lock_timeout: Duration::from_secs(60),
        }
    }
}

/// The authoritative tier.
pub trait GlobalTier: Send + Sync + std::fmt::Debug {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StateError>;
    /// `len` bytes from `offset`: `NotFound` without a value,
    /// `OutOfBounds` past its end.
    fn get_range(&self, key: &str, offset: u64, len: u32) -> Result<Vec<u8>, StateError>;
    fn set(&self, key: &str, value: &[u8]) -> Result<(), StateError>;
    /// Resizes the value to `len` (zero-filled) and writes `ranges` into
    /// it; `NotFound` if the key has no value.
    fn set_ranges(&self, key: &str, len: u64, ranges: &[(u64, &[u8])]) -> Result<(), StateError>;
    fn delete(&self, key: &str) -> Result<(), StateError>;
    fn append(&self, key: &str, record: &[u8]) -> Result<(), StateError>;
    fn appended_count(&self, key: &str) -> Result<u32, StateError>;
    fn read_appended(&self, key: &str, index: u32) -> Result<Option<Vec<u8>>, StateError>;
    fn clear_appended(&self, key: &str) -> Result<(), StateError>;
    fn lock(
        &self,
        key: &str,
        kind: LockKind,
        owner: Owner,
        deadline: Instant,
    ) -> Result<(), StateError>;
    fn unlock(&self, key: &str, kind: LockKind, owner: Owner) -> Result<(), StateError>;
}

/// Readers-writer locks by key, held across calls by owners.
#[derive(Debug, Default)]
pub struct LockTable {
    locks: Mutex<HashMap<String, Held>>,
    changed: Condvar,
}

#[derive(Debug, Default)]
struct Held {
    /// Read locks by owner (an owner may take several).
    readers: HashMap<Owner, u32>,
    writer: Option<Owner>,
}

impl LockTable {
    fn table(&self) -> MutexGuard<'_, HashMap<String, Held>> {
        self.locks.locked()
    }

    pub fn lock(
        &self,
        key: &str,
        kind: LockKind,
        owner: Owner,
        deadline: Instant,
    ) -> Result<(), StateError> {
        let mut table = self.table();
        loop {
            let held = table.entry(key.to_owned()).or_default();
            let free = match kind {
                LockKind::Read => held.writer.is_none(),
                LockKind::Write => held.writer.is_none() && held.readers.is_empty(),
            };
            if free {
                match kind {
                    LockKind::Read => *held.readers.entry(owner).or_default() += 1,
                    LockKind::Write => held.writer = Some(owner),
                }
                return Ok(());
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(StateError::TimedOut);
            }
            table = crate::locks::wait_timeout(&self.changed, table, deadline - now).0;
        }
    }

    pub fn unlock(&self, key: &str, kind: LockKind, owner: Owner) -> Result<(), StateError> {
        let mut table = self.table();
        let held = table.get_mut(key).ok_or(StateError::NotLocked)?;
        match kind {
            LockKind::Read => {
                let count = held.readers.get_mut(&owner).ok_or(StateError::NotLocked)?;
                *count -= 1;
                if *count == 0 {
                    held.readers.remove(&owner);
                }
            }
            LockKind::Write => {
                if held.writer != Some(owner) {
                    return Err(StateError::NotLocked);
                }
                held.writer = None;
            }
        }
        if held.writer.is_none() && held.readers.is_empty() {
            table.remove(key);
        }
        drop(table);
        self.changed.notify_all();
        Ok(())
    }
}

/// The global tier kept in this process: the default on a single host.
#[derive(Debug, Default)]
pub struct EmbeddedGlobal {
    values: Mutex<HashMap<String, Vec<u8>>>,
    logs: Mutex<HashMap<String, Vec<Vec<u8>>>>,
    locks: LockTable,
}

/// `value[offset..offset + len]`, or `OutOfBounds`.
fn range(value: &[u8], offset: u64, len: u32) -> Result<&[u8], StateError> {
    let end = offset
        .checked_add(len as u64)
        .ok_or(StateError::OutOfBounds)?;
    value
        .get(offset as usize..end as usize)
        .ok_or(StateError::OutOfBounds)
}

fn guard<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.locked()
}

impl GlobalTier for EmbeddedGlobal {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StateError> {
        Ok(guard(&self.values).get(key).cloned())
    }

    fn get_range(&self, key: &str, offset: u64, len: u32) -> Result<Vec<u8>, StateError> {
        let values = guard(&self.values);
        let value = values.get(key).ok_or(StateError::NotFound)?;
        range(value, offset, len).map(<[u8]>::to_vec)
    }

    fn set(&self, key: &str, value: &[u8]) -> Result<(), StateError> {
        guard(&self.values).insert(key.to_owned(), value.to_vec());
        Ok(())
    }

    fn set_ranges(&self, key: &str, len: u64, ranges: &[(u64, &[u8])]) -> Result<(), StateError> {
        let mut values = guard(&self.values);
        let value = values.get_mut(key).ok_or(StateError::NotFound)?;
        value.resize(len as usize, 0);
        for &(offset, data) in ranges {
            let start = offset as usize;
            let end = start
                .checked_add(data.len())
                .ok_or(StateError::OutOfBounds)?;
            value
                .get_mut(start..end)
                .ok_or(StateError::OutOfBounds)?
                .copy_from_slice(data);
        }
        Ok(())
    }

    fn delete(&self, key: &str) -> Result<(), StateError> {
        guard(&self.values).remove(key);
        guard(&self.logs).remove(key);
        Ok(())
    }

    fn append(&self, key: &str, record: &[u8]) -> Result<(), StateError> {
        let mut logs = guard(&self.logs);
        let log = logs.entry(key.to_owned()).or_default();
        if log.len() >= u32::MAX as usize {
            return Err(StateError::TooLarge);
        }
        log.push(record.to_vec());
        Ok(())
    }

    fn appended_count(&self, key: &str) -> Result<u32, StateError> {
        Ok(guard(&self.logs).get(key).map_or(0, |log| log.len() as u32))
    }

    fn read_appended(&self, key: &str, index: u32) -> Result<Option<Vec<u8>>, StateError> {
        Ok(guard(&self.logs)
            .get(key)
            .and_then(|log| log.get(index as usize).cloned()))
    }

    fn clear_appended(&self, key: &str) -> Result<(), StateError> {
        guard(&self.logs).remove(key);
        Ok(())
    }

    fn lock(
        &self,
        key: &str,
        kind: LockKind,
        owner: Owner,
        deadline: Instant,
    ) -> Result<(), StateError> {
        self.locks.lock(key, kind, owner, deadline)
    }

    fn unlock(&self, key: &str, kind: LockKind, owner: Owner) -> Result<(), StateError> {
        self.locks.unlock(key, kind, owner)
    }
}

/// A value in the local tier, and the ranges written since the last push or
/// pull (sorted, disjoint).
#[derive(Debug, Default)]
struct Local {
    value: Vec<u8>,
    dirty: Vec<(u64, u64)>,
}

impl Local {
    fn mark(&mut self, start: u64, end: u64) {
        self.dirty.push((start, end));
        self.dirty.sort_unstable();
        let mut merged: Vec<(u64, u64)> = Vec::with_capacity(self.dirty.len());
        for &(s, e) in &self.dirty {
            match merged.last_mut() {
                Some(last) if s <= last.1 => last.1 = last.1.max(e),
                _ => merged.push((s, e)),
            }
        }
        self.dirty = merged;
    }
}

/// One host's state: its local tier over a global tier.
#[derive(Debug)]
pub struct StateHost {
    local: Mutex<HashMap<String, Local>>,
    local_locks: LockTable,
    global: Arc<dyn GlobalTier>,
    limits: StateLimits,
}

impl Default for StateHost {
    fn default() -> Self {
        Self::new(Arc::new(EmbeddedGlobal::default()), StateLimits::default())
    }
}

impl StateHost {
    /// The global tier under this host's local one.
    pub fn global(&self) -> &Arc<dyn GlobalTier> {
        &self.global
    }

    pub fn new(global: Arc<dyn GlobalTier>, limits: StateLimits) -> Self {
        Self {
            local: Mutex::new(HashMap::new()),
            local_locks: LockTable::default(),
            global,
            limits,
        }
    }

    pub fn limits(&self) -> &StateLimits {
        &self.limits
    }

    fn check_key(&self, key: &str) -> Result<(), StateError> {
        if key.len() > self.limits.max_key_len {
            return Err(StateError::TooLarge);
        }
        Ok(())
    }

    /// Runs `f` on the local entry of `key`, pulling it first if the local
    /// tier does not hold it.
    fn with_local<R>(
        &self,
        key: &str,
        f: impl FnOnce(&mut Local) -> Result<R, StateError>,
    ) -> Result<R, StateError> {
        self.check_key(key)?;
        let mut local = guard(&self.local);
        if !local.contains_key(key) {
            let value = self.global.get(key)?.ok_or(StateError::NotFound)?;
            local.insert(
                key.to_owned(),
                Local {
                    value,
                    dirty: Vec::new(),
                },
            );
        }
        f(local.get_mut(key).expect("present"))
    }

    pub fn get(&self, key: &str) -> Result<Vec<u8>, StateError> {
        self.with_local(key, |entry| Ok(entry.value.clone()))
    }

    pub fn get_range(&self, key: &str, offset: u64, len: u32) -> Result<Vec<u8>, StateError> {
        self.with_local(key, |entry| {
            range(&entry.value, offset, len).map(<[u8]>::to_vec)
        })
    }

    pub fn set(&self, key: &str, value: &[u8]) -> Result<(), StateError> {
        self.check_key(key)?;
        if value.len() as u64 > self.limits.max_value_len {
            return Err(StateError::TooLarge);
        }
        let mut local = guard(&self.local);
        let entry = local.entry(key.to_owned()).or_default();
        entry.value = value.to_vec();
        entry.dirty.clear();
        entry.mark(0, value.len() as u64);
        Ok(())
    }

    pub fn set_range(&self, key: &str, offset: u64, data: &[u8]) -> Result<(), StateError> {
        self.check_key(key)?;
        let end = offset
            .checked_add(data.len() as u64)
            .filter(|end| *end <= self.limits.max_value_len)
            .ok_or(StateError::TooLarge)?;
        let mut local = guard(&self.local);
        if !local.contains_key(key) {
            // A range of a value this host has not seen: start from the
            // global value, or from nothing.
            let value = self.global.get(key)?.unwrap_or_default();
            local.insert(
                key.to_owned(),
                Local {
                    value,
                    dirty: Vec::new(),
                },
            );
        }
        let entry = local.get_mut(key).expect("present");
        if entry.value.len() < end as usize {
            entry.value.resize(end as usize, 0);
        }
        entry.value[offset as usize..end as usize].copy_from_slice(data);
        entry.mark(offset, end);
        Ok(())
    }

    pub fn size(&self, key: &str) -> Result<u64, StateError> {
        self.with_local(key, |entry| Ok(entry.value.len() as u64))
    }

    pub fn push(&self, key: &str) -> Result<(), StateError> {
        self.check_key(key)?;
        let mut local = guard(&self.local);
        let entry = local.get_mut(key).ok_or(StateError::NotFound)?;
        self.global.set(key, &entry.value)?;
        entry.dirty.clear();
        Ok(())
    }

    pub fn push_partial(&self, key: &str) -> Result<(), StateError> {
        self.check_key(key)?;
        let mut local = guard(&self.local);
        let entry = local.get_mut(key).ok_or(StateError::NotFound)?;
        let ranges: Vec<(u64, &[u8])> = entry
            .dirty
            .iter()
            .map(|&(s, e)| (s, &entry.value[s as usize..e as usize]))
            .collect();
        match self
            .global
            .set_ranges(key, entry.value.len() as u64, &ranges)
        {
            // The global tier has no value to patch: send it whole.
            Err(StateError::NotFound) => self.global.set(key, &entry.value)?,
            other => other?,
        }
        entry.dirty.clear();
        Ok(())
    }

    pub fn pull(&self, key: &str) -> Result<(), StateError> {
        self.check_key(key)?;
        let value = self.global.get(key)?.ok_or(StateError::NotFound)?;
        guard(&self.local).insert(
            key.to_owned(),
            Local {
                value,
                dirty: Vec::new(),
            },
        );
        Ok(())
    }

    pub fn pull_range(&self, key: &str, offset: u64, len: u32) -> Result<(), StateError> {
        self.check_key(key)?;
        if !guard(&self.local).contains_key(key) {
            return self.pull(key);
        }
        let bytes = self.global.get_range(key, offset, len)?;
        let end = offset
            .checked_add(bytes.len() as u64)
            .filter(|end| *end <= self.limits.max_value_len)
            .ok_or(StateError::TooLarge)?;
        let mut local = guard(&self.local);
        // Pulled without the local tier's lock: the entry may be gone.
        let entry = local.entry(key.to_owned()).or_default();
        if (entry.value.len() as u64) < end {
            entry.value.resize(end as usize, 0);
        }
        entry.value[offset as usize..end as usize].copy_from_slice(&bytes);
        Ok(())
    }

    pub fn delete(&self, key: &str) -> Result<(), StateError> {
        self.check_key(key)?;
        guard(&self.local).remove(key);
        self.global.delete(key)
    }

    pub fn append(&self, key: &str, record: &[u8]) -> Result<(), StateError> {
        self.check_key(key)?;
        if record.len() as u64 > self.limits.max_value_len {
            return Err(StateError::TooLarge);
        }
        self.global.append(key, record)
    }

    pub fn appended_count(&self, key: &str) -> Result<u32, StateError> {
        self.check_key(key)?;
        self.global.appended_count(key)
    }

    pub fn read_appended(&self, key: &str, index: u32) -> Result<Vec<u8>, StateError> {
        self.check_key(key)?;
        self.global
            .read_appended(key, index)?
            .ok_or(StateError::OutOfBounds)
    }

    pub fn clear_appended(&self, key: &str) -> Result<(), StateError> {
        self.check_key(key)?;
        self.global.clear_appended(key)
    }

    pub fn lock(
        &self,
        key: &str,
        tier: Tier,
        kind: LockKind,
        owner: Owner,
    ) -> Result<(), StateError> {
        self.check_key(key)?;
        let deadline = Instant::now() + self.limits.lock_timeout;
        match tier {
            Tier::Local => self.local_locks.lock(key, kind, owner, deadline),
            Tier::Global => self.global.lock(key, kind, owner, deadline),
        }
    }

    pub fn unlock(
        &self,
        key: &str,
        tier: Tier,
        kind: LockKind,
        owner: Owner,
    ) -> Result<(), StateError> {
        self.check_key(key)?;
        match tier {
            Tier::Local => self.local_locks.unlock(key, kind, owner),
            Tier::Global => self.global.unlock(key, kind, owner),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_enforced() {
        let state = StateHost::new(
            Arc::new(EmbeddedGlobal::default()),
            StateLimits {
                max_key_len: 4,
                max_value_len: 8,
                lock_timeout: Duration::from_millis(20),
            },
        );
        assert_eq!(state.set("toolong", b""), Err(StateError::TooLarge));
        assert_eq!(state.set("k", &[0; 9]), Err(StateError::TooLarge));
        assert_eq!(state.set_range("k", 5, &[0; 4]), Err(StateError::TooLarge));
        assert_eq!(
            state.set_range("k", u64::MAX, &[1]),
            Err(StateError::TooLarge)
        );
        state.set_range("k", 4, &[1; 4]).unwrap();
        assert_eq!(state.get("k").unwrap(), [0, 0, 0, 0, 1, 1, 1, 1]);
    }
}
