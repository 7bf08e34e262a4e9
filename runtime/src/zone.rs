//! The arena zone: address ranges of the main memory that Weft hands out as
//! heap-arena chunks to chained threads (chain mode). No allocator of the
//! guest uses them, so a chunk belongs to exactly one thread's arena.
//!
//! Pure bookkeeping; `chain/arena.rs` grows the main memory when the zone is
//! short and keeps a reused range zero in the memories that need it.

use std::collections::BTreeMap;

/// Chunks are whole wasm pages: page-aligned, so zeroing them can drop
/// whole OS pages.
pub(crate) const GRAIN: u32 = 64 << 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FreeRange {
    len: u32,
    /// Used before: holds old data in some memories, so it must be zeroed
    /// before reuse. Never-used ranges are zero everywhere.
    dirty: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Chunk {
    len: u32,
    arena: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ZoneError {
    #[error("{0:#x} is not the start of an arena chunk")]
    NotAChunk(u32),
}

/// A range handed out by [`Zone::take`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Taken {
    pub start: u32,
    pub dirty: bool,
}

#[derive(Debug, Default)]
pub(crate) struct Zone {
    free: BTreeMap<u32, FreeRange>,
    chunks: BTreeMap<u32, Chunk>,
}

impl Zone {
    /// Adds never-used address space (the main memory just grew).
    pub(crate) fn add_fresh(&mut self, start: u32, len: u32) {
        self.insert_free(start, len, false);
    }

    /// Takes `len` bytes (a multiple of [`GRAIN`]) for arena `arena`, or for
    /// a new arena whose header starts the range when `arena` is `None`.
    pub(crate) fn take(&mut self, len: u32, arena: Option<u32>) -> Option<Taken> {
        debug_assert!(len > 0 && len.is_multiple_of(GRAIN));
        let (&start, &range) = self.free.iter().find(|(_, r)| r.len >= len)?;
        self.free.remove(&start);
        if range.len > len {
            self.free.insert(
                start + len,
                FreeRange {
                    len: range.len - len,
                    dirty: range.dirty,
                },
            );
        }
        self.chunks.insert(
            start,
            Chunk {
                len,
                arena: arena.unwrap_or(start),
            },
        );
        tracing::trace!(start, len, arena, dirty = range.dirty, "zone: chunk taken");
        Some(Taken {
            start,
            dirty: range.dirty,
        })
    }

    /// Gives chunk `start` back; its bytes are dirty from now on.
    pub(crate) fn release(&mut self, start: u32) -> Result<(), ZoneError> {
        let chunk = self
            .chunks
            .remove(&start)
            .ok_or(ZoneError::NotAChunk(start))?;
        tracing::trace!(
            start,
            len = chunk.len,
            arena = chunk.arena,
            "zone: chunk released"
        );
        self.insert_free(start, chunk.len, true);
        Ok(())
    }

    /// The arena whose chunk holds `addr`.
    pub(crate) fn arena_of(&self, addr: u32) -> Option<u32> {
        let (&start, chunk) = self.chunks.range(..=addr).next_back()?;
        (addr - start < chunk.len).then_some(chunk.arena)
    }

    /// Whether `addr` lies in a range that was handed out and given back
    /// (a block of an arena that no longer exists).
    pub(crate) fn is_released(&self, addr: u32) -> bool {
        self.free
            .range(..=addr)
            .next_back()
            .is_some_and(|(&start, range)| range.dirty && addr - start < range.len)
    }

    /// Files a free range, joined with free neighbours (a joined range is
    /// dirty if any part is).
    fn insert_free(&mut self, mut start: u32, mut len: u32, mut dirty: bool) {
        if let Some((&before, range)) = self.free.range(..start).next_back()
            && before + range.len == start
        {
            start = before;
            len += range.len;
            dirty |= range.dirty;
            self.free.remove(&before);
        }
        if let Some(range) = self.free.remove(&(start + len)) {
            len += range.len;
            dirty |= range.dirty;
        }
        self.free.insert(start, FreeRange { len, dirty });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const G: u32 = GRAIN;

    #[test]
    fn hands_out_disjoint_chunks_and_finds_their_arena() {
        let mut zone = Zone::default();
        zone.add_fresh(10 * G, 8 * G);
        let a = zone.take(2 * G, None).unwrap();
        let b = zone.take(G, Some(a.start)).unwrap();
        let c = zone.take(4 * G, None).unwrap();
        assert_eq!((a.start, b.start, c.start), (10 * G, 12 * G, 13 * G));
        assert!(!a.dirty && !b.dirty && !c.dirty);
        assert_eq!(zone.take(2 * G, None), None, "only one page is left");
        assert_eq!(zone.arena_of(10 * G + 5), Some(a.start));
        assert_eq!(zone.arena_of(12 * G + G - 1), Some(a.start));
        assert_eq!(zone.arena_of(13 * G), Some(c.start));
        assert_eq!(zone.arena_of(17 * G), None, "free");
        assert_eq!(zone.arena_of(9 * G), None, "outside the zone");
    }

    #[test]
    fn released_chunks_join_and_come_back_dirty() {
        let mut zone = Zone::default();
        zone.add_fresh(0, 4 * G);
        let a = zone.take(G, None).unwrap();
        let b = zone.take(G, None).unwrap();
        // Held, or never handed out: no freed arena's.
        assert!(!zone.is_released(b.start + 16));
        assert!(!zone.is_released(3 * G + 16));
        assert_eq!(zone.release(b.start), Ok(()));
        assert_eq!(zone.release(b.start), Err(ZoneError::NotAChunk(b.start)));
        assert!(zone.is_released(b.start + 16));
        assert_eq!(zone.release(a.start), Ok(()));
        assert_eq!(zone.arena_of(a.start), None);
        // Both released chunks joined with the fresh rest: one range.
        let all = zone.take(4 * G, None).unwrap();
        assert_eq!(
            all,
            Taken {
                start: 0,
                dirty: true
            }
        );
    }

    #[test]
    fn fresh_space_after_used_space_stays_usable() {
        let mut zone = Zone::default();
        zone.add_fresh(0, G);
        let a = zone.take(G, None).unwrap();
        zone.add_fresh(5 * G, 2 * G);
        let b = zone.take(2 * G, None).unwrap();
        assert_eq!(
            b,
            Taken {
                start: 5 * G,
                dirty: false
            }
        );
        zone.release(a.start).unwrap();
        assert_eq!(
            zone.take(G, None),
            Some(Taken {
                start: 0,
                dirty: true
            })
        );
    }
}
