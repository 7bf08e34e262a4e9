//! Which pages of a memory mapping hold data, from the kernel.
//!
//! A fresh anonymous mapping has no pages until they are touched, so asking
//! the kernel (Linux 6.7+ `PAGEMAP_SCAN` on `/proc/self/pagemap`) for the
//! present pages makes snapshot capture and diffing cost follow the pages a
//! guest used, not the size of its memory. Where the ioctl is missing the
//! callers scan every page instead.
//!
//! [`WriteTracker`] goes further: with userfaultfd write protection in
//! asynchronous mode (no fault messages, the kernel just records the write)
//! the same ioctl lists the pages written since the last look, so a diff or
//! an updated snapshot costs what was written, not what is present.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
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

const PAGE_IS_WRITTEN: u64 = 1 << 1;
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
    scan(
        base,
        len,
        page_size,
        PmScanArg {
            category_inverted: PAGE_IS_PFNZERO,
            category_mask: PAGE_IS_PFNZERO,
            category_anyof_mask: PAGE_IS_PRESENT | PAGE_IS_SWAPPED,
            return_mask: PAGE_IS_PRESENT | PAGE_IS_SWAPPED,
            ..PmScanArg::default()
        },
    )
}

/// Runs `PAGEMAP_SCAN` with `query`'s flags and categories over
/// `base..base + len`; the indices of the matching pages.
fn scan(base: *const u8, len: usize, page_size: usize, query: PmScanArg) -> Option<Vec<u32>> {
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
            ..query
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

const UFFD_USER_MODE_ONLY: libc::c_int = 1;
const UFFD_API: u64 = 0xaa;
const UFFD_FEATURE_WP_UNPOPULATED: u64 = 1 << 13;
const UFFD_FEATURE_WP_ASYNC: u64 = 1 << 15;
const UFFDIO_REGISTER_MODE_WP: u64 = 1 << 1;
const UFFDIO_WRITEPROTECT_MODE_WP: u64 = 1 << 0;
/// `_IOWR(0xaa, nr, size)`.
const fn uffd_ioctl(nr: u64, size: usize) -> u64 {
    (3 << 30) | ((size as u64) << 16) | (0xaa << 8) | nr
}
const UFFDIO_API: u64 = uffd_ioctl(0x3f, 24);
const UFFDIO_REGISTER: u64 = uffd_ioctl(0x00, 32);
const UFFDIO_WRITEPROTECT: u64 = uffd_ioctl(0x06, 24);
const PM_SCAN_WP_MATCHING: u64 = 1 << 0;
const PM_SCAN_CHECK_WPASYNC: u64 = 1 << 1;

/// Which pages of a mapping were written since the last look (Linux 6.7+
/// userfaultfd `WP_ASYNC` and `PAGEMAP_SCAN`). A write to a page costs one
/// minor fault the first time after each look.
#[derive(Debug)]
pub struct WriteTracker {
    uffd: OwnedFd,
    base: usize,
}

impl WriteTracker {
    /// Tracks writes to `base..base + len` (a private anonymous mapping,
    /// page-aligned, which may include inaccessible parts it grows into).
    /// From now on every page counts as unwritten. `None` when the kernel
    /// or the process's rights do not allow it.
    pub fn new(base: *const u8, len: usize) -> Option<Self> {
        // SAFETY: plain syscall; the descriptor is owned below.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_userfaultfd,
                libc::O_CLOEXEC | libc::O_NONBLOCK | UFFD_USER_MODE_ONLY,
            )
        };
        if fd < 0 {
            return None;
        }
        // SAFETY: a fresh descriptor nobody else owns.
        let uffd = unsafe { OwnedFd::from_raw_fd(fd as libc::c_int) };
        let mut api = [
            UFFD_API,
            UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_WP_UNPOPULATED,
            0,
        ];
        let mut register = [base as u64, len as u64, UFFDIO_REGISTER_MODE_WP, 0];
        let mut protect = [base as u64, len as u64, UFFDIO_WRITEPROTECT_MODE_WP];
        // SAFETY: each argument is the kernel's struct for that request
        // (u64 fields), alive for the call; the range is ours.
        let ok = unsafe {
            libc::ioctl(uffd.as_raw_fd(), UFFDIO_API as _, api.as_mut_ptr()) == 0
                && libc::ioctl(
                    uffd.as_raw_fd(),
                    UFFDIO_REGISTER as _,
                    register.as_mut_ptr(),
                ) == 0
                && libc::ioctl(
                    uffd.as_raw_fd(),
                    UFFDIO_WRITEPROTECT as _,
                    protect.as_mut_ptr(),
                ) == 0
        };
        ok.then_some(Self {
            uffd,
            base: base as usize,
        })
    }

    /// Indices (in `page_size` units) of the pages of the first `len` bytes
    /// written since the last call; they count as unwritten again.
    pub fn take_written(&self, len: usize, page_size: usize) -> Option<Vec<u32>> {
        let _ = &self.uffd; // the registration lives as long as the descriptor
        scan(
            self.base as *const u8,
            len,
            page_size,
            PmScanArg {
                flags: PM_SCAN_WP_MATCHING | PM_SCAN_CHECK_WPASYNC,
                category_mask: PAGE_IS_WRITTEN,
                return_mask: PAGE_IS_WRITTEN,
                ..PmScanArg::default()
            },
        )
    }
}

/// Asks for no transparent huge pages on `base..base + len`: write tracking
/// works per mapped page, and a huge page would count as written whole.
pub fn advise_no_huge_pages(base: *const u8, len: usize) {
    // SAFETY: advice on a range of a mapping we were given; it does not
    // change contents.
    unsafe { libc::madvise(base as *mut libc::c_void, len, libc::MADV_NOHUGEPAGE) };
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

    #[test]
    fn tracks_written_pages_between_looks() {
        const LEN: usize = 64 * 4096;
        let base = map_anonymous(LEN) as *mut u8;
        let Some(tracker) = WriteTracker::new(base, LEN) else {
            // SAFETY: unmapping what we mapped.
            unsafe { libc::munmap(base.cast(), LEN) };
            eprintln!("userfaultfd write tracking is not available here");
            return;
        };
        // SAFETY: in bounds of the mapping, which nobody else uses.
        unsafe {
            base.add(3 * 4096).write(1);
            base.add(10 * 4096 + 5).write(2);
            let _ = base.add(20 * 4096).read_volatile(); // a read is no write
        }
        assert_eq!(tracker.take_written(LEN, 4096), Some(vec![3, 10]));
        assert_eq!(tracker.take_written(LEN, 4096), Some(vec![]));
        // SAFETY: as above.
        unsafe {
            base.add(10 * 4096).write(3);
            zero(base.add(40 * 4096), 4096); // dropped, not written
        }
        // A dropped page may count as written too (the kernel reinstalls
        // its protection): harmless, the caller rereads it.
        let written = tracker.take_written(LEN, 4096).unwrap();
        assert!(written == [10] || written == [10, 40], "{written:?}");
        assert_eq!(tracker.take_written(LEN, 16384), Some(vec![]));
        // SAFETY: as above.
        unsafe { base.add(41 * 4096).write(4) };
        assert_eq!(
            tracker.take_written(LEN, 16384),
            Some(vec![10]),
            "16 KiB units"
        );

        drop(tracker);
        // SAFETY: unmapping what we mapped.
        unsafe { libc::munmap(base.cast(), LEN) };
    }
}
