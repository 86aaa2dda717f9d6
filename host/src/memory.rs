//! How the process gives memory back. Image buffers are megabytes each and live for
//! one request; glibc's malloc, by default, raises its mmap threshold every time such
//! a block is freed (up to 32 MiB), so later image buffers land in the heap arenas,
//! where a freed block in the middle of a heap is not returned: after a burst, the
//! resident size stays near its peak for good. A fixed threshold keeps every
//! buffer above it in a mapping of its own, unmapped the moment it is freed, and a
//! trim after a burst hands back the arenas' free pages.
//!
//! The threshold is a trade. A fresh mapping costs a page fault and a zeroed page
//! for every 4 KiB written, and the munmap when freed: at 128 KiB, every buffer of a
//! 1K image (the ~180 KB inflated answer, redb's 256 KiB page buffers for its cache
//! write) was one, and in profiles of unique-prompt misses the faults were about a
//! tenth of the gateway's CPU, more with cache writes on. At 512 KiB those come
//! from the arenas, reused warm; 2K and 4K images (half a megabyte and more) still
//! get mappings, which is what keeps bursts bounded: with the threshold at 4 MiB,
//! the 64-concurrent-4K peak went from 138 to 166 MB and the n=10 burst's from 323
//! to 570 MB.

/// Blocks of at least this size get their own mapping.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD: libc::c_int = 512 * 1024;

/// Free space an arena keeps at its top before giving it back: a few warm 1K-image
/// buffers per thread, instead of faulting them in again for every request. Bounded
/// per arena, and handed back by [`trim`] after a burst.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const TRIM_THRESHOLD: libc::c_int = 2 * 1024 * 1024;

/// Set the allocator up for megabyte-sized, short-lived buffers. Call once, before
/// any thread starts.
pub fn tune() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes glibc's allocation parameters; it is called before
    // the runtime's threads exist, and the values are within glibc's documented ranges.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
        libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD);
    }
}

/// Return the arenas' free pages to the system (after a burst of large requests).
pub fn trim() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim is thread-safe and only releases memory malloc holds free.
    unsafe {
        libc::malloc_trim(0);
    }
}
