//! The pages of a snapshot: a persistent table, so a copy costs next to
//! nothing and copies share the pages neither has changed.
//!
//! A host that keeps a running image of a memory (updated with the pages
//! written since the last snapshot) hands out snapshots as cheap copies of
//! that image, and can tell which pages two copies differ in by identity
//! alone (`changed_between`), without comparing bytes.

use std::sync::Arc;

use crate::PAGE_SIZE;

pub type Page = [u8; PAGE_SIZE];

/// Pages per chunk: copying a table copies one pointer per chunk.
const CHUNK: usize = 64;

#[derive(Clone)]
struct Chunk {
    pages: [Option<Arc<Page>>; CHUNK],
    count: usize,
}

impl Default for Chunk {
    fn default() -> Self {
        Self {
            pages: std::array::from_fn(|_| None),
            count: 0,
        }
    }
}

/// Page index → page bytes, for the pages that hold data.
#[derive(Clone, Default)]
pub struct PageTable {
    chunks: Vec<Option<Arc<Chunk>>>,
    count: usize,
}

fn split(index: u32) -> (usize, usize) {
    (index as usize / CHUNK, index as usize % CHUNK)
}

impl PageTable {
    /// Number of pages held.
    pub fn len(&self) -> usize {
        self.count
    }

    pub fn get(&self, index: u32) -> Option<&Page> {
        let (chunk, slot) = split(index);
        self.chunks.get(chunk)?.as_ref()?.pages[slot].as_deref()
    }

    /// The chunk holding `index`, unshared, created if needed.
    fn chunk_mut(&mut self, index: u32) -> (&mut Chunk, usize) {
        let (chunk, slot) = split(index);
        if self.chunks.len() <= chunk {
            self.chunks.resize(chunk + 1, None);
        }
        let chunk = self.chunks[chunk].get_or_insert_with(Default::default);
        (Arc::make_mut(chunk), slot)
    }

    /// Sets page `index` to `data`.
    pub fn insert(&mut self, index: u32, data: &Page) {
        let added = self.get(index).is_none();
        let (chunk, slot) = self.chunk_mut(index);
        // A fresh page rather than a write into a shared one.
        chunk.pages[slot] = Some(Arc::new(*data));
        if added {
            chunk.count += 1;
            self.count += 1;
        }
    }

    /// Sets page `index` to `other`'s page `index`, shared (no copy);
    /// false when `other` has no such page.
    pub fn insert_shared(&mut self, index: u32, other: &PageTable) -> bool {
        let (c, s) = split(index);
        let Some(page) = other
            .chunks
            .get(c)
            .and_then(Option::as_ref)
            .and_then(|chunk| chunk.pages[s].clone())
        else {
            return false;
        };
        let added = self.get(index).is_none();
        let (chunk, slot) = self.chunk_mut(index);
        chunk.pages[slot] = Some(page);
        if added {
            chunk.count += 1;
            self.count += 1;
        }
        true
    }

    /// Drops page `index` (it reads as zero from now on).
    pub fn remove(&mut self, index: u32) {
        let (chunk_index, slot) = split(index);
        let Some(Some(chunk)) = self.chunks.get_mut(chunk_index) else {
            return;
        };
        if chunk.pages[slot].is_none() {
            return;
        }
        let chunk = Arc::make_mut(chunk);
        chunk.pages[slot] = None;
        chunk.count -= 1;
        self.count -= 1;
        if chunk.count == 0 {
            self.chunks[chunk_index] = None;
        }
    }

    /// Page `index` to change in place, added (zero) if missing.
    pub fn page_mut(&mut self, index: u32) -> &mut Page {
        if self.get(index).is_none() {
            self.insert(index, &[0; PAGE_SIZE]);
        }
        let (chunk, slot) = self.chunk_mut(index);
        Arc::make_mut(chunk.pages[slot].as_mut().expect("present"))
    }

    /// Page `index` to change in place, if the table holds it.
    pub fn existing_page_mut(&mut self, index: u32) -> Option<&mut Page> {
        self.get(index)?;
        Some(self.page_mut(index))
    }

    /// Pages by increasing index.
    pub fn iter(&self) -> impl Iterator<Item = (u32, &Page)> + '_ {
        self.chunks
            .iter()
            .enumerate()
            .filter_map(|(c, chunk)| Some((c, chunk.as_ref()?)))
            .flat_map(|(c, chunk)| {
                chunk
                    .pages
                    .iter()
                    .enumerate()
                    .filter_map(move |(s, page)| Some(((c * CHUNK + s) as u32, &**page.as_ref()?)))
            })
    }

    /// Indices of pages `a` and `b` may differ in: where they do not share
    /// the same page (or both lack it). Copies of one table that changed
    /// few pages differ in few, found without reading page bytes.
    pub fn changed_between(a: &Self, b: &Self) -> Vec<u32> {
        let mut changed = Vec::new();
        for c in 0..a.chunks.len().max(b.chunks.len()) {
            let (x, y) = (
                a.chunks.get(c).and_then(Option::as_ref),
                b.chunks.get(c).and_then(Option::as_ref),
            );
            if let (Some(x), Some(y)) = (x, y)
                && Arc::ptr_eq(x, y)
            {
                continue;
            }
            for s in 0..CHUNK {
                let (p, q) = (
                    x.and_then(|x| x.pages[s].as_ref()),
                    y.and_then(|y| y.pages[s].as_ref()),
                );
                let same = match (p, q) {
                    (None, None) => true,
                    (Some(p), Some(q)) => Arc::ptr_eq(p, q),
                    _ => false,
                };
                if !same {
                    changed.push((c * CHUNK + s) as u32);
                }
            }
        }
        changed
    }
}

impl std::fmt::Debug for PageTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter().map(|(i, _)| i)).finish()
    }
}

impl PartialEq for PageTable {
    fn eq(&self, other: &Self) -> bool {
        self.count == other.count && self.iter().eq(other.iter())
    }
}

impl Eq for PageTable {}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(byte: u8) -> Page {
        [byte; PAGE_SIZE]
    }

    #[test]
    fn copies_share_pages_until_one_changes() {
        let mut a = PageTable::default();
        a.insert(3, &page(1));
        a.insert(200, &page(2));
        let mut b = a.clone();
        assert_eq!(a, b);
        assert!(PageTable::changed_between(&a, &b).is_empty());
        b.insert(3, &page(9));
        b.page_mut(70)[5] = 4;
        b.remove(200);
        assert_eq!(a.get(3), Some(&page(1)), "the original is untouched");
        assert_eq!(a.get(200), Some(&page(2)));
        assert_eq!(b.get(3), Some(&page(9)));
        assert_eq!(b.get(70).map(|p| p[5]), Some(4));
        assert_eq!(b.get(200), None);
        assert_eq!(PageTable::changed_between(&a, &b), vec![3, 70, 200]);
        assert_eq!(
            b.iter().map(|(i, _)| i).collect::<Vec<_>>(),
            vec![3, 70],
            "by increasing index"
        );
        assert_eq!((a.len(), b.len()), (2, 2));
        b.remove(3);
        b.remove(70);
        b.remove(70);
        assert_eq!(b.len(), 0);
        assert_eq!(b.existing_page_mut(3), None);
    }

    #[test]
    fn a_shared_insert_takes_the_other_tables_page_itself() {
        let mut a = PageTable::default();
        a.insert(5, &page(3));
        let mut b = PageTable::default();
        assert!(b.insert_shared(5, &a));
        assert!(!b.insert_shared(6, &a), "a has no page 6");
        assert_eq!(b.len(), 1);
        assert!(
            PageTable::changed_between(&a, &b).is_empty(),
            "the same page"
        );
        b.page_mut(5)[0] = 9;
        assert_eq!(a.get(5), Some(&page(3)), "a write copies it first");
    }
}
