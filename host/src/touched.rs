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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_written_pages_of_a_fresh_mapping() {
        const LEN: usize = 64 << 20;
        // SAFETY: a private anonymous mapping we own and unmap below.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                LEN,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert_ne!(base, libc::MAP_FAILED);
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
}
