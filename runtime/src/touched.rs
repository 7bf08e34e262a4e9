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
//!
//! [`LazyFill`] adds missing-page faults to the same registration: a
//! restored memory gets each page from its snapshot when first touched.

use crate::locks::Locked as _;
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

/// A userfaultfd (created with `flags`) on `base..base + len` in async
/// write-protect mode, plus `extra_modes`, with every page protected: from
/// now on every page counts as unwritten. `None` when the kernel or the
/// process's rights do not allow it.
fn register_tracked(
    base: *const u8,
    len: usize,
    flags: libc::c_int,
    extra_modes: u64,
) -> Option<OwnedFd> {
    // SAFETY: plain syscall; the descriptor is owned below.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_userfaultfd,
            libc::O_CLOEXEC | libc::O_NONBLOCK | flags,
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
    let mut register = [
        base as u64,
        len as u64,
        UFFDIO_REGISTER_MODE_WP | extra_modes,
        0,
    ];
    let mut protect = [base as u64, len as u64, UFFDIO_WRITEPROTECT_MODE_WP];
    // SAFETY: each argument is the kernel's struct for that request (u64
    // fields), alive for the call; the range is ours.
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
    ok.then_some(uffd)
}

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
        let uffd = register_tracked(base, len, UFFD_USER_MODE_ONLY, 0)?;
        Some(Self {
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
                // Pages a memory grew into were never protected, so they
                // count as written until a look protects them; unless they
                // hold a page they are not (and reading them would fill a
                // lazy memory's pages for nothing). They are protected
                // when they come in: filled (protected), or written.
                category_anyof_mask: PAGE_IS_PRESENT | PAGE_IS_SWAPPED,
                return_mask: PAGE_IS_WRITTEN,
                ..PmScanArg::default()
            },
        )
    }
}

const UFFDIO_REGISTER_MODE_MISSING: u64 = 1 << 0;
const UFFDIO_COPY_MODE_WP: u64 = 1 << 1;
const UFFDIO_COPY: u64 = uffd_ioctl(0x03, 40);
const UFFD_EVENT_PAGEFAULT: u8 = 0x12;
/// `sizeof(struct uffd_msg)`.
const UFFD_MSG_SIZE: usize = 32;
/// How often a fill thread looks whether its memory is gone.
const FILL_POLL_MS: libc::c_int = 100;
/// Bytes a fill fault brings in at once when none of them is there yet (a
/// wasm page): one round trip to the fill thread per 64 KiB, not per 4 KiB.
const FILL_BLOCK: usize = 64 << 10;

/// What a page of a lazily filled mapping holds: `fill(offset, page)`
/// writes the bytes at `offset` (page-aligned, from the mapping's base).
pub type PageSource = Box<dyn Fn(usize, &mut [u8]) + Send>;

/// Ranges filled lazily, by base address: zeroing there must write zeros,
/// since a dropped page would be filled again from its source.
fn lazy_ranges() -> &'static std::sync::Mutex<Vec<(usize, usize)>> {
    static RANGES: OnceLock<std::sync::Mutex<Vec<(usize, usize)>>> = OnceLock::new();
    RANGES.get_or_init(Default::default)
}

fn is_lazy(addr: usize) -> bool {
    lazy_ranges()
        .locked()
        .iter()
        .any(|&(base, len)| (base..base + len).contains(&addr))
}

/// A mapping whose pages are filled on first touch (userfaultfd missing
/// faults, served by a thread of its own from a [`PageSource`]), with
/// writes tracked as [`WriteTracker`] does: a restored memory costs the
/// pages its thread touches, not the whole snapshot. Dropping it stops the
/// thread, so nothing may touch the mapping's missing pages afterwards.
pub struct LazyFill {
    uffd: std::sync::Arc<OwnedFd>,
    base: usize,
    len: usize,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// Replaced when what the missing pages should read as changes
    /// ([`LazyFill::refill_from`]); the fill thread locks it per fault.
    source: std::sync::Arc<std::sync::Mutex<PageSource>>,
}

impl std::fmt::Debug for LazyFill {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LazyFill")
            .field("base", &self.base)
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

impl LazyFill {
    /// Fills `base..base + len` (a private anonymous mapping, page-aligned,
    /// nothing in it touched yet) from `source` from now on. `None` when the
    /// kernel or the process's rights do not allow it (faults taken inside
    /// system calls need a descriptor that is not user-mode only).
    pub fn new(base: *const u8, len: usize, source: PageSource) -> Option<Self> {
        // Faults inside system calls need a descriptor that is not
        // user-mode only.
        let uffd = register_tracked(base, len, 0, UFFDIO_REGISTER_MODE_MISSING)?;
        let uffd = std::sync::Arc::new(uffd);
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let source = std::sync::Arc::new(std::sync::Mutex::new(source));
        {
            let (uffd, stop, source) = (uffd.clone(), stop.clone(), source.clone());
            let base = base as usize;
            // Detached: it ends at its first look after `stop`.
            std::thread::Builder::new()
                .name("weft-page-fill".into())
                .spawn(move || serve_faults(&uffd, base, len, &stop, &source))
                .ok()?;
        }
        lazy_ranges().locked().push((base as usize, len));
        Some(Self {
            uffd,
            base: base as usize,
            len,
            stop,
            source,
        })
    }

    /// From now on missing pages read as `source` says, and `pages` (in
    /// `page_size` units from the base; past the range: ignored) are
    /// dropped, so their next touch fills them from it. What a thread's
    /// copy of memory takes at an acquire then costs nothing until read.
    ///
    /// # Safety
    /// Nothing may access the dropped pages meanwhile (their contents
    /// change under it), and the caller must want every missing page of
    /// the range to read as `source` from now on.
    pub unsafe fn refill_from(&self, source: PageSource, pages: &[u32], page_size: usize) {
        // SAFETY: forwarded to the caller.
        unsafe { self.refill(source, pages, page_size, false) }
    }

    /// As [`LazyFill::refill_from`], but the pages the mapping holds are
    /// rewritten in place from `source` rather than dropped: a page the
    /// thread touched is likely touched again, and a fault served by the
    /// fill thread costs far more than a copy. Only the pages it does not
    /// hold are left to fill from `source` when touched.
    ///
    /// # Safety
    /// As for [`LazyFill::refill_from`].
    pub unsafe fn update_from(&self, source: PageSource, pages: &[u32], page_size: usize) {
        // SAFETY: forwarded to the caller.
        unsafe { self.refill(source, pages, page_size, true) }
    }

    /// # Safety
    /// As for [`LazyFill::refill_from`].
    unsafe fn refill(&self, source: PageSource, pages: &[u32], page_size: usize, keep: bool) {
        *self.source.locked() = source;
        if keep {
            let held: Vec<u32> = pages
                .iter()
                .copied()
                .filter(|&p| self.holds(p as usize * page_size, page_size))
                .collect();
            // SAFETY: forwarded to the caller; the pages are held, so the
            // writes fault to no one.
            unsafe { self.rewrite(&held, page_size) };
            return;
        }
        let mut runs = pages.iter().map(|&p| p as usize * page_size).peekable();
        while let Some(start) = runs.next() {
            let mut end = start + page_size;
            while runs.peek() == Some(&end) {
                end += page_size;
                runs.next();
            }
            let end = end.min(self.len);
            if start >= end {
                continue;
            }
            // SAFETY: inside the registered private anonymous mapping (no
            // further than its length); the caller keeps everyone off these
            // pages. A dropped page of a missing-registered range faults
            // to the fill thread at its next touch.
            let dropped = unsafe {
                libc::madvise(
                    (self.base + start) as *mut libc::c_void,
                    end - start,
                    libc::MADV_DONTNEED,
                )
            };
            if dropped != 0 {
                // Not dropped: write the new contents in place instead.
                let pages: Vec<u32> = (start..end)
                    .step_by(page_size)
                    .map(|at| (at / page_size) as u32)
                    .collect();
                // SAFETY: forwarded to the caller.
                unsafe { self.rewrite(&pages, page_size) };
            }
        }
    }

    /// Whether the mapping holds the page at `offset` (resident).
    fn holds(&self, offset: usize, page_size: usize) -> bool {
        if offset + page_size > self.len {
            return false;
        }
        let mut resident = 0u8;
        // SAFETY: one page-aligned page inside our mapping; the kernel
        // writes one byte into `resident`.
        let ok = unsafe {
            libc::mincore(
                (self.base + offset) as *mut libc::c_void,
                page_size,
                &mut resident,
            )
        };
        // Unknown: rewrite it (a write into a missing page only fills it).
        ok != 0 || resident & 1 != 0
    }

    /// Writes `pages` (in `page_size` units) from the source, in place.
    ///
    /// # Safety
    /// As for [`LazyFill::refill_from`].
    unsafe fn rewrite(&self, pages: &[u32], page_size: usize) {
        // Read out first: a write into a missing page faults to the fill
        // thread, which takes the source's lock.
        let mut bytes = vec![0u8; pages.len() * page_size];
        {
            let source = self.source.locked();
            for (page, out) in pages.iter().zip(bytes.chunks_mut(page_size)) {
                source(*page as usize * page_size, out);
            }
        }
        for (page, data) in pages.iter().zip(bytes.chunks(page_size)) {
            let at = *page as usize * page_size;
            if at + page_size > self.len {
                continue;
            }
            // SAFETY: inside the mapping; the caller keeps everyone off
            // these pages.
            unsafe {
                std::ptr::copy_nonoverlapping(data.as_ptr(), (self.base + at) as *mut u8, page_size)
            };
        }
    }

    /// The write tracker of the mapping (the same registration).
    pub fn tracker(&self) -> Option<WriteTracker> {
        let uffd = self.uffd.try_clone().ok()?;
        Some(WriteTracker {
            uffd,
            base: self.base,
        })
    }
}

impl Drop for LazyFill {
    fn drop(&mut self) {
        // The fill thread ends at its next look (it owns what it uses);
        // waiting for it would hold up every memory's drop by a poll.
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        lazy_ranges()
            .locked()
            .retain(|&(base, _)| base != self.base);
    }
}

/// The fill thread: answers each missing-page fault of `base..base + len`
/// with the page from `source`, write-protected (so writes count as the
/// tracker's), until `stop`.
fn serve_faults(
    uffd: &OwnedFd,
    base: usize,
    len: usize,
    stop: &std::sync::atomic::AtomicBool,
    source: &std::sync::Mutex<PageSource>,
) {
    let page_size = page_size();
    let block = FILL_BLOCK.max(page_size);
    let mut buffer = vec![0u8; block];
    let mut msg = [0u8; UFFD_MSG_SIZE];
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        let mut poll = libc::pollfd {
            fd: uffd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one pollfd, alive for the call.
        if unsafe { libc::poll(&mut poll, 1, FILL_POLL_MS) } <= 0 {
            continue;
        }
        // SAFETY: `msg` is a buffer of the size read.
        let read = unsafe { libc::read(uffd.as_raw_fd(), msg.as_mut_ptr().cast(), UFFD_MSG_SIZE) };
        if read != UFFD_MSG_SIZE as isize || msg[0] != UFFD_EVENT_PAGEFAULT {
            continue;
        }
        let address = u64::from_ne_bytes(msg[16..24].try_into().expect("8 bytes")) as usize;
        let at = address / page_size * page_size;
        if at < base || at >= base + len {
            continue;
        }
        // The whole block around the fault when it fits the range; the
        // kernel refuses it (EEXIST) if any page of it is there already,
        // and then the faulting page alone goes in.
        let block_at = (at - base) / block * block + base;
        let source = source.locked();
        if block_at + block <= base + len {
            for (i, page) in buffer.chunks_mut(page_size).enumerate() {
                source(block_at - base + i * page_size, page);
            }
            if copy_in(uffd, block_at, &buffer) {
                continue;
            }
        }
        let page = &mut buffer[..page_size];
        source(at - base, page);
        copy_in(uffd, at, page);
    }
}

/// Puts `bytes` at `at` (missing pages of a registered range), write
/// protected; whether all of them went in.
fn copy_in(uffd: &OwnedFd, at: usize, bytes: &[u8]) -> bool {
    // `struct uffdio_copy`: dst, src, len, mode, copy (out).
    let mut copy = [
        at as u64,
        bytes.as_ptr() as u64,
        bytes.len() as u64,
        UFFDIO_COPY_MODE_WP,
        0,
    ];
    // SAFETY: the kernel's struct, alive for the call; `bytes` outlives it;
    // the destination lies in the registered range, where the kernel only
    // fills missing pages (EEXIST for the others).
    let rc = unsafe { libc::ioctl(uffd.as_raw_fd(), UFFDIO_COPY as _, copy.as_mut_ptr()) };
    rc == 0 && copy[4] == bytes.len() as u64
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
        // Dropped pages of a private anonymous mapping read as zero, unless
        // the mapping is filled lazily (they would be filled again).
        if is_lazy(start)
            || libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_DONTNEED) != 0
        {
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

    #[test]
    fn refilling_drops_pages_and_fills_them_from_the_new_source() {
        const PAGES: usize = 32;
        let len = PAGES * page_size();
        let base = map_anonymous(len);
        let bytes = base as *mut u8;
        let source: PageSource = Box::new(|_, page| page.fill(1));
        let Some(lazy) = LazyFill::new(bytes, len, source) else {
            // SAFETY: unmapping what we mapped.
            unsafe { libc::munmap(base, len) };
            eprintln!("no userfaultfd here: nothing to test");
            return;
        };
        let tracker = lazy.tracker().unwrap();
        // SAFETY: in bounds of the mapping; faults are served by the fill
        // thread, and nothing else touches the mapping.
        unsafe {
            bytes.add(2 * page_size()).write_volatile(9);
            assert_eq!(bytes.add(3 * page_size()).read_volatile(), 1);
        }
        assert_eq!(tracker.take_written(len, page_size()), Some(vec![2]));
        // From now on missing pages read 2; pages 2 and 3 are dropped,
        // the rest of what was filled stays.
        let source: PageSource = Box::new(|_, page| page.fill(2));
        // SAFETY: nothing touches the pages meanwhile.
        unsafe { lazy.refill_from(source, &[2, 3], page_size()) };
        // SAFETY: as above.
        unsafe {
            assert_eq!(bytes.add(2 * page_size()).read_volatile(), 2);
            assert_eq!(bytes.add(3 * page_size() + 7).read_volatile(), 2);
            assert_eq!(bytes.add(4 * page_size()).read_volatile(), 1, "kept");
            assert_eq!(bytes.add(30 * page_size()).read_volatile(), 2, "new");
        }
        // Filling is no write.
        assert_eq!(tracker.take_written(len, page_size()), Some(vec![]));
        drop(tracker);
        drop(lazy);
        // SAFETY: unmapping what we mapped; nothing touches it any more.
        unsafe { libc::munmap(base, len) };
    }

    #[test]
    fn a_lazy_mapping_fills_the_pages_touched_and_tracks_writes() {
        const PAGES: usize = 64;
        let len = PAGES * page_size();
        let base = map_anonymous(len);
        let bytes = base as *mut u8;
        // Page i holds byte i + 1 everywhere.
        let source: PageSource =
            Box::new(|offset, page| page.fill((offset / page_size()) as u8 + 1));
        let Some(lazy) = LazyFill::new(bytes, len, source) else {
            // SAFETY: unmapping what we mapped.
            unsafe { libc::munmap(base, len) };
            eprintln!("no userfaultfd here: nothing to test");
            return;
        };
        let tracker = lazy.tracker().unwrap();
        // SAFETY: in bounds of the mapping; faults are served by the fill
        // thread.
        unsafe {
            assert_eq!(bytes.add(3 * page_size() + 9).read_volatile(), 4);
            assert_eq!(bytes.add(40 * page_size()).read_volatile(), 41);
            bytes.add(7 * page_size()).write_volatile(0xee);
            assert_eq!(bytes.add(7 * page_size() + 1).read_volatile(), 8);
        }
        // A system call writing into an untouched page (a fault taken in
        // the kernel) works too.
        let mut pipe = [0i32; 2];
        // SAFETY: plain syscalls on our own descriptors and mapping.
        unsafe {
            assert_eq!(libc::pipe(pipe.as_mut_ptr()), 0);
            assert_eq!(libc::write(pipe[1], b"hi".as_ptr().cast(), 2), 2);
            assert_eq!(
                libc::read(pipe[0], bytes.add(20 * page_size()).cast(), 2),
                2
            );
            libc::close(pipe[0]);
            libc::close(pipe[1]);
            assert_eq!(bytes.add(20 * page_size()).read_volatile(), b'h');
            assert_eq!(bytes.add(20 * page_size() + 2).read_volatile(), 21);
        }
        // Only the blocks touched take memory (a block is 16 pages of 4
        // KiB); only the written pages count as written.
        let mut resident = vec![0u8; PAGES];
        // SAFETY: `resident` has one byte per page of the mapping.
        assert_eq!(
            unsafe { libc::mincore(base, len, resident.as_mut_ptr()) },
            0
        );
        let resident: Vec<usize> = (0..PAGES).filter(|&i| resident[i] & 1 != 0).collect();
        let block = FILL_BLOCK / page_size();
        let touched_blocks = [3 / block, 20 / block, 40 / block];
        let expected: Vec<usize> = (0..PAGES)
            .filter(|page| touched_blocks.contains(&(page / block)))
            .collect();
        assert_eq!(resident, expected);
        assert!(!resident.contains(&(PAGES - 1)));
        assert_eq!(tracker.take_written(len, page_size()), Some(vec![7, 20]));
        // Zeroing a lazy range writes zeros: a dropped page would be filled
        // again from the source.
        // SAFETY: inside the mapping; nobody else writes it.
        unsafe {
            zero(bytes.add(40 * page_size()), 2 * page_size());
            assert_eq!(bytes.add(40 * page_size()).read_volatile(), 0);
            assert_eq!(bytes.add(41 * page_size() + 5).read_volatile(), 0);
        }
        drop(tracker);
        drop(lazy);
        // SAFETY: unmapping what we mapped; nothing touches it any more.
        unsafe { libc::munmap(base, len) };
    }
}
