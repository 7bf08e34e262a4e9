//! Which pages of a memory mapping hold data, from the kernel.
//!
//! A fresh anonymous mapping has no pages until they are touched, so asking
//! the kernel (Linux 6.7+ `PAGEMAP_SCAN` on `/proc/self/pagemap`) for the
//! present pages makes snapshot capture and diffing cost follow the pages a
//! guest used, not the size of its memory. Where the ioctl is missing the
//! callers scan every page instead.

use std::os::fd::AsRawFd;
use std::sync::OnceLock;

/// One entry of the kernel's answer (`struct page_region`).
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct PageRegion {
    start: u64,
    end: u64,
    categories: u64,
}

/// `struct pm_scan_arg`.
#[repr(C)]
#[derive(Default)]
struct PmScanArg {
    size: u64,
    flags: u64,
    start: u64,
    end: u64,
    walk_end: u64,
    vec: u64,
    vec_len: u64,
    max_pages: u64,
    category_inverted: u64,
    category_mask: u64,
    category_anyof_mask: u64,
    return_mask: u64,
}

const PAGE_IS_PRESENT: u64 = 1 << 3;
const PAGE_IS_SWAPPED: u64 = 1 << 4;
const PAGE_IS_PFNZERO: u64 = 1 << 5;
/// `_IOWR('f', 16, struct pm_scan_arg)`.
const PAGEMAP_SCAN: u64 =
    (3 << 30) | ((std::mem::size_of::<PmScanArg>() as u64) << 16) | ((b'f' as u64) << 8) | 16;
const REGIONS_PER_CALL: usize = 512;

fn pagemap() -> Option<&'static std::fs::File> {
    static FILE: OnceLock<Option<std::fs::File>> = OnceLock::new();
    FILE.get_or_init(|| std::fs::File::open("/proc/self/pagemap").ok())
        .as_ref()
}

/// Indices (in units of `page_size`, from `base`) of the pages of
/// `base..base + len` that hold data: present or swapped, and not the
/// shared zero page. `None` when the kernel cannot tell.
///
/// `base` and `len` must be multiples of the OS page size (4 KiB), and
/// `page_size` a multiple of it.
pub fn present_pages(base: *const u8, len: usize, page_size: usize) -> Option<Vec<u32>> {
    let file = pagemap()?;
    let start = base as u64;
    let end = start + len as u64;
    let mut regions = [PageRegion::default(); REGIONS_PER_CALL];
    let mut pages = Vec::new();
    let mut from = start;
    while from < end {
        let mut arg = PmScanArg {
            size: std::mem::size_of::<PmScanArg>() as u64,
            start: from,
            end,
            vec: regions.as_mut_ptr() as u64,
            vec_len: REGIONS_PER_CALL as u64,
            category_inverted: PAGE_IS_PFNZERO,
            category_mask: PAGE_IS_PFNZERO,
            category_anyof_mask: PAGE_IS_PRESENT | PAGE_IS_SWAPPED,
            return_mask: PAGE_IS_PRESENT | PAGE_IS_SWAPPED,
            ..PmScanArg::default()
        };
        // SAFETY: `arg` and `regions` outlive the call, `arg.size` and
        // `vec_len` describe them; the kernel only reads the page tables of
        // the given range of our own address space.
        let found = unsafe { libc::ioctl(file.as_raw_fd(), PAGEMAP_SCAN as _, &mut arg) };
        if found < 0 {
            return None;
        }
        for region in &regions[..found as usize] {
            let first = (region.start - start) as usize / page_size;
            let last = ((region.end - start) as usize).div_ceil(page_size);
            pages.extend(first as u32..last as u32);
        }
        if arg.walk_end <= from {
            return None; // no progress: do not loop
        }
        from = arg.walk_end;
    }
    pages.dedup();
    Some(pages)
}

/// Asks for transparent huge pages on `base..base + len` (a part of a
/// memory mapping). Advice only: failure changes nothing but speed.
pub fn advise_huge_pages(base: *const u8, len: usize) {
    const HUGE: usize = 2 << 20;
    let start = (base as usize).next_multiple_of(HUGE);
    let end = (base as usize + len) / HUGE * HUGE;
    if end > start {
        // SAFETY: advice on whole huge pages inside a mapping we were given;
        // MADV_HUGEPAGE does not change contents.
        unsafe { libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE) };
    }
}

/// Makes `base[..len]` zero (a part of a private anonymous mapping, such
/// as a wasm linear memory). Whole OS pages are dropped rather than
/// written, so they stop counting as present; the edges are written.
///
/// # Safety
/// `base..base + len` must be inside one private anonymous mapping that no
/// one else writes meanwhile.
pub unsafe fn zero(base: *mut u8, len: usize) {
    let page = page_size();
    let start = (base as usize).next_multiple_of(page);
    let end = (base as usize + len) / page * page;
    if end <= start {
        // SAFETY: forwarded to the caller.
        unsafe { std::ptr::write_bytes(base, 0, len) };
        return;
    }
    // SAFETY: forwarded to the caller; the pieces lie inside the range.
    unsafe {
        std::ptr::write_bytes(base, 0, start - base as usize);
        std::ptr::write_bytes(end as *mut u8, 0, base as usize + len - end);
        // Dropped pages of a private anonymous mapping read as zero.
        if libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_DONTNEED) != 0 {
            std::ptr::write_bytes(start as *mut u8, 0, end - start);
        }
    }
}

fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if size > 0 { size as usize } else { 4096 }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A private anonymous mapping of `len` bytes; the test unmaps it.
    fn map_anonymous(len: usize) -> *mut libc::c_void {
        // SAFETY: a fresh mapping, owned by the caller.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert_ne!(base, libc::MAP_FAILED);
        base
    }

    #[test]
    fn finds_written_pages_of_a_fresh_mapping() {
        const LEN: usize = 64 << 20;
        let base = map_anonymous(LEN);
        let bytes = base as *mut u8;
        // SAFETY: in bounds of the mapping.
        unsafe {
            bytes.add(5 * 4096 + 7).write(1);
            bytes.add(1000 * 4096).write(2);
            let _ = bytes.add(2000 * 4096).read_volatile(); // read only: zero page
        }
        let found = present_pages(bytes, LEN, 4096);
        // SAFETY: unmapping what we mapped.
        unsafe { libc::munmap(base, LEN) };
        if let Some(found) = found {
            assert_eq!(found, vec![5, 1000]);
        }
    }

    #[test]
    fn zero_clears_exactly_its_range() {
        const LEN: usize = 16 * 4096;
        let base = map_anonymous(LEN);
        // SAFETY: the mapping is ours and LEN bytes long.
        let bytes = unsafe { std::slice::from_raw_parts_mut(base as *mut u8, LEN) };
        bytes.fill(0xaa);
        for (start, len) in [(4096 * 2 + 100, 4096 * 5), (10, 20), (4096 * 12, 4096)] {
            // SAFETY: inside the mapping; nobody else writes it.
            unsafe { zero(bytes.as_mut_ptr().add(start), len) };
            assert!(bytes[start..start + len].iter().all(|&b| b == 0));
            assert_eq!(bytes[start - 1], 0xaa);
            assert_eq!(bytes[start + len], 0xaa);
            bytes.fill(0xaa);
        }
        // SAFETY: unmapping what we mapped.
        unsafe { libc::munmap(base, LEN) };
    }
}
