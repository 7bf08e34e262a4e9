//! `poll_oneoff` on descriptors, waited for without the process's one WASI
//! context.
//!
//! `poll`, `select` and `pselect` of a thread that waits for input would
//! otherwise hold the context for the whole wait, and every other thread's
//! WASI call (a `printf`, a clock, a sleep) would wait for that input too:
//! a program that polls stdin in one thread while others print hangs. So
//! the call is parsed once ([`PendingPoll::parse`]) and then looked at
//! again and again ([`PendingPoll::look`]), each look holding the context
//! only for a poll of the descriptors that cannot wait; the caller sleeps
//! between looks without it. Clock subscriptions are Weft's own: their
//! deadlines are fixed when the call is made, so a relative timeout is
//! not restarted by every look.
//!
//! Everything here but `look`'s one poll is plain data.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::p1::wasi_snapshot_preview1 as p1;
use wiggle::GuestMemory;

// Layout of the preview1 `subscription` and `event` records.
pub(crate) const SUBSCRIPTION_SIZE: usize = 48;
pub(crate) const EVENT_SIZE: usize = 32;
pub(crate) const EVENTTYPE_CLOCK: u8 = 0;
pub(crate) const EVENTTYPE_FD_READ: u8 = 1;
const EVENTTYPE_FD_WRITE: u8 = 2;
pub(crate) const CLOCKID_REALTIME: u32 = 0;
pub(crate) const CLOCKID_MONOTONIC: u32 = 1;
pub(crate) const SUBCLOCKFLAGS_ABSTIME: u16 = 1;

/// More subscriptions than this are left to wasmtime-wasi as they are
/// (holding the context): the copy each look makes stays small.
const MAX_SUBSCRIPTIONS: usize = 4096;

/// When a clock subscription is due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Due {
    /// A relative timeout: this long after the call was made.
    After(Duration),
    /// An absolute time on the real-time clock (since the epoch).
    AtRealtime(Duration),
    /// An absolute time on wasmtime-wasi's monotonic clock, whose origin is
    /// its own: read through the context.
    AtMonotonic(u64),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Subscription {
    Clock {
        userdata: u64,
        due: Due,
    },
    /// A read or write readiness subscription, as the guest wrote it.
    Descriptor([u8; SUBSCRIPTION_SIZE]),
}

/// A `poll_oneoff` call being waited for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PendingPoll {
    subscriptions: Vec<Subscription>,
    made: Instant,
}

/// What one look at a pending poll found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Look {
    /// These events happened: the call returns them.
    Ready(Vec<[u8; EVENT_SIZE]>),
    /// The call fails with this errno.
    Errno(i32),
    /// Nothing yet; the first clock subscription is due in this long
    /// (`None`: the call has no clock, it waits for a descriptor only).
    Waiting(Option<Duration>),
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap())
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap())
}

impl PendingPoll {
    /// Parses `nsubs` subscription records (`records`, their bytes) of a
    /// call made at `made`. `None` for a call Weft leaves to wasmtime-wasi
    /// as it is (its answer, an errno or a trap, is then the call's): no
    /// subscriptions, too many, an unknown record type, a clock other than
    /// the real-time and monotonic ones.
    pub(crate) fn parse(records: &[u8], made: Instant) -> Option<Self> {
        let count = records.len() / SUBSCRIPTION_SIZE;
        if count == 0
            || count > MAX_SUBSCRIPTIONS
            || !records.len().is_multiple_of(SUBSCRIPTION_SIZE)
        {
            return None;
        }
        let subscriptions = records
            .chunks_exact(SUBSCRIPTION_SIZE)
            .map(|record| {
                let record: [u8; SUBSCRIPTION_SIZE] = record.try_into().unwrap();
                match record[8] {
                    EVENTTYPE_CLOCK => {
                        let clock = u32_at(&record, 16);
                        let timeout = u64_at(&record, 24);
                        let absolute = u16::from_le_bytes([record[40], record[41]])
                            & SUBCLOCKFLAGS_ABSTIME
                            != 0;
                        let due = match (clock, absolute) {
                            (CLOCKID_REALTIME | CLOCKID_MONOTONIC, false) => {
                                Due::After(Duration::from_nanos(timeout))
                            }
                            (CLOCKID_REALTIME, true) => {
                                Due::AtRealtime(Duration::from_nanos(timeout))
                            }
                            (CLOCKID_MONOTONIC, true) => Due::AtMonotonic(timeout),
                            _ => return None,
                        };
                        Some(Subscription::Clock {
                            userdata: u64_at(&record, 0),
                            due,
                        })
                    }
                    EVENTTYPE_FD_READ | EVENTTYPE_FD_WRITE => {
                        Some(Subscription::Descriptor(record))
                    }
                    _ => None,
                }
            })
            .collect::<Option<Vec<_>>>()?;
        Some(Self {
            subscriptions,
            made,
        })
    }

    /// Whether the call waits for a descriptor at all (else it only
    /// sleeps, and no look needs the context).
    fn has_descriptors(&self) -> bool {
        self.subscriptions
            .iter()
            .any(|s| matches!(s, Subscription::Descriptor(_)))
    }

    /// Looks once: polls the descriptors with a timeout of zero on `ctx`
    /// (held only for this look) and checks the clocks.
    pub(crate) fn look(&self, ctx: &mut WasiP1Ctx) -> wasmtime::Result<Look> {
        let mut events = Vec::new();
        if self.has_descriptors() {
            match self.poll_descriptors(ctx)? {
                Ok(ready) => events = ready,
                Err(errno) => return Ok(Look::Errno(errno)),
            }
        }
        let monotonic_now = if self.subscriptions.iter().any(|s| {
            matches!(
                s,
                Subscription::Clock {
                    due: Due::AtMonotonic(_),
                    ..
                }
            )
        }) {
            Some(monotonic_now(ctx)?)
        } else {
            None
        };
        let realtime_now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let (expired, next) = self.clocks(self.made.elapsed(), realtime_now, monotonic_now);
        events.extend(expired);
        Ok(if events.is_empty() {
            Look::Waiting(next)
        } else {
            Look::Ready(events)
        })
    }

    /// The clock subscriptions' events due at these readings (time since
    /// the call was made, the real-time clock, wasmtime-wasi's monotonic
    /// clock), and how long until the first one not yet due.
    fn clocks(
        &self,
        since_made: Duration,
        realtime_now: Duration,
        monotonic_now: Option<u64>,
    ) -> (Vec<[u8; EVENT_SIZE]>, Option<Duration>) {
        let mut expired = Vec::new();
        let mut next: Option<Duration> = None;
        for subscription in &self.subscriptions {
            let Subscription::Clock { userdata, due } = subscription else {
                continue;
            };
            let left = match *due {
                Due::After(timeout) => timeout.saturating_sub(since_made),
                Due::AtRealtime(at) => at.saturating_sub(realtime_now),
                Due::AtMonotonic(at) => {
                    Duration::from_nanos(at.saturating_sub(monotonic_now.unwrap_or(u64::MAX)))
                }
            };
            if left.is_zero() {
                let mut event = [0u8; EVENT_SIZE];
                event[0..8].copy_from_slice(&userdata.to_le_bytes());
                event[10] = EVENTTYPE_CLOCK;
                expired.push(event);
            } else {
                next = Some(next.map_or(left, |n| n.min(left)));
            }
        }
        (expired, next)
    }

    /// Polls the descriptor subscriptions and a timeout of zero, on a
    /// scratch memory of the host's: the events of the descriptors ready
    /// now, under their own userdata, or the call's errno.
    fn poll_descriptors(
        &self,
        ctx: &mut WasiP1Ctx,
    ) -> wasmtime::Result<Result<Vec<[u8; EVENT_SIZE]>, i32>> {
        let records = self.scratch_records();
        let count = records.len() / SUBSCRIPTION_SIZE;
        let events_at = records.len();
        let count_at = events_at + count * EVENT_SIZE;
        let mut scratch = records;
        scratch.resize(count_at + 4, 0);
        let errno = wasmtime_wasi::runtime::in_tokio(p1::poll_oneoff(
            ctx,
            &mut GuestMemory::Unshared(&mut scratch),
            0,
            events_at as i32,
            count as i32,
            count_at as i32,
        ))?;
        if errno != 0 {
            return Ok(Err(errno));
        }
        Ok(Ok(self.descriptor_events(
            &scratch[events_at..],
            u32_at(&scratch, count_at),
        )))
    }

    /// The descriptor subscriptions with their index for userdata, then a
    /// relative monotonic timeout of zero whose userdata is no index.
    fn scratch_records(&self) -> Vec<u8> {
        let mut records = Vec::with_capacity((self.subscriptions.len() + 1) * SUBSCRIPTION_SIZE);
        for (index, subscription) in self.subscriptions.iter().enumerate() {
            if let Subscription::Descriptor(record) = subscription {
                let mut record = *record;
                record[0..8].copy_from_slice(&(index as u64).to_le_bytes());
                records.extend_from_slice(&record);
            }
        }
        let mut timeout = [0u8; SUBSCRIPTION_SIZE];
        timeout[0..8].copy_from_slice(&u64::MAX.to_le_bytes());
        timeout[8] = EVENTTYPE_CLOCK;
        timeout[16..20].copy_from_slice(&CLOCKID_MONOTONIC.to_le_bytes());
        records.extend_from_slice(&timeout);
        records
    }

    /// The descriptor events among the first `count` of `events` (the
    /// scratch poll's), with the guest's userdata put back.
    fn descriptor_events(&self, events: &[u8], count: u32) -> Vec<[u8; EVENT_SIZE]> {
        events
            .chunks_exact(EVENT_SIZE)
            .take(count as usize)
            .filter_map(|event| {
                let index = usize::try_from(u64_at(event, 0)).ok()?;
                let Some(Subscription::Descriptor(record)) = self.subscriptions.get(index) else {
                    return None;
                };
                let mut event: [u8; EVENT_SIZE] = event.try_into().unwrap();
                event[0..8].copy_from_slice(&record[0..8]);
                Some(event)
            })
            .collect()
    }
}

/// wasmtime-wasi's monotonic clock now, in the units absolute monotonic
/// subscriptions use.
fn monotonic_now(ctx: &mut WasiP1Ctx) -> wasmtime::Result<u64> {
    let mut out = [0u8; 8];
    let errno = p1::clock_time_get(
        ctx,
        &mut GuestMemory::Unshared(&mut out),
        CLOCKID_MONOTONIC as i32,
        1,
        0,
    )?;
    if errno != 0 {
        wasmtime::bail!("the monotonic clock cannot be read (errno {errno})");
    }
    Ok(u64::from_le_bytes(out))
}

/// `events` laid out as the guest's event array.
pub(crate) fn event_bytes(events: &[[u8; EVENT_SIZE]]) -> Vec<u8> {
    events.concat()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clock(userdata: u64, id: u32, timeout: u64, absolute: bool) -> [u8; SUBSCRIPTION_SIZE] {
        let mut r = [0u8; SUBSCRIPTION_SIZE];
        r[0..8].copy_from_slice(&userdata.to_le_bytes());
        r[8] = EVENTTYPE_CLOCK;
        r[16..20].copy_from_slice(&id.to_le_bytes());
        r[24..32].copy_from_slice(&timeout.to_le_bytes());
        r[40] = absolute as u8;
        r
    }

    fn read_fd(userdata: u64, fd: u32) -> [u8; SUBSCRIPTION_SIZE] {
        let mut r = [0u8; SUBSCRIPTION_SIZE];
        r[0..8].copy_from_slice(&userdata.to_le_bytes());
        r[8] = EVENTTYPE_FD_READ;
        r[16..20].copy_from_slice(&fd.to_le_bytes());
        r
    }

    #[test]
    fn calls_weft_does_not_wait_for_itself_are_left_as_they_are() {
        let made = Instant::now();
        assert_eq!(PendingPoll::parse(&[], made), None);
        assert_eq!(PendingPoll::parse(&[0u8; 47], made), None);
        let mut unknown = read_fd(1, 0);
        unknown[8] = 9;
        assert_eq!(PendingPoll::parse(&unknown, made), None);
        // A CPU-time clock.
        assert_eq!(PendingPoll::parse(&clock(1, 2, 5, false), made), None);
        let many = read_fd(1, 0).repeat(MAX_SUBSCRIPTIONS + 1);
        assert_eq!(PendingPoll::parse(&many, made), None);
        assert!(PendingPoll::parse(&read_fd(1, 0).repeat(MAX_SUBSCRIPTIONS), made).is_some());
    }

    #[test]
    fn clocks_expire_at_their_own_deadline_and_say_when_the_next_is_due() {
        let records = [
            clock(7, CLOCKID_MONOTONIC, 150_000_000, false),
            read_fd(8, 0),
            clock(9, CLOCKID_REALTIME, 2_000_000_000, true),
            clock(10, CLOCKID_MONOTONIC, 500, true),
        ]
        .concat();
        let poll = PendingPoll::parse(&records, Instant::now()).unwrap();
        assert!(poll.has_descriptors());
        // 100 ms in, real time 1 s, monotonic 400: none is due; the
        // monotonic one is 100 ns away.
        let (expired, next) = poll.clocks(
            Duration::from_millis(100),
            Duration::from_secs(1),
            Some(400),
        );
        assert!(expired.is_empty());
        assert_eq!(next, Some(Duration::from_nanos(100)));
        // 150 ms in and monotonic 500: two are due, the real-time one is
        // still a second away.
        let (expired, next) = poll.clocks(
            Duration::from_millis(150),
            Duration::from_secs(1),
            Some(500),
        );
        let userdata: Vec<u64> = expired.iter().map(|e| u64_at(e, 0)).collect();
        assert_eq!(userdata, [7, 10]);
        assert!(
            expired
                .iter()
                .all(|e| e[10] == EVENTTYPE_CLOCK && e[8] == 0)
        );
        assert_eq!(next, Some(Duration::from_secs(1)));
    }

    #[test]
    fn descriptor_events_get_the_guests_userdata_back() {
        let records = [clock(1, CLOCKID_MONOTONIC, 5, false), read_fd(0xabc, 3)].concat();
        let poll = PendingPoll::parse(&records, Instant::now()).unwrap();
        let scratch = poll.scratch_records();
        // The descriptor under its index, then the zero timeout.
        assert_eq!(scratch.len(), 2 * SUBSCRIPTION_SIZE);
        assert_eq!(u64_at(&scratch, 0), 1);
        assert_eq!(u32_at(&scratch, 16), 3);
        assert_eq!(u64_at(&scratch, SUBSCRIPTION_SIZE), u64::MAX);
        assert_eq!(u64_at(&scratch, SUBSCRIPTION_SIZE + 24), 0);
        // The scratch poll's events: the descriptor's and the timeout's;
        // an index that is no descriptor is dropped.
        let mut events = vec![0u8; 3 * EVENT_SIZE];
        events[0..8].copy_from_slice(&1u64.to_le_bytes());
        events[10] = EVENTTYPE_FD_READ;
        events[16] = 42;
        events[EVENT_SIZE..EVENT_SIZE + 8].copy_from_slice(&u64::MAX.to_le_bytes());
        events[2 * EVENT_SIZE..2 * EVENT_SIZE + 8].copy_from_slice(&0u64.to_le_bytes());
        let found = poll.descriptor_events(&events, 3);
        assert_eq!(found.len(), 1);
        assert_eq!(u64_at(&found[0], 0), 0xabc);
        assert_eq!(found[0][16], 42);
        // Only `count` events are read.
        assert!(poll.descriptor_events(&events, 0).is_empty());
    }
}
