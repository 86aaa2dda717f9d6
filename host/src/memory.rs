//! How the process gives memory back. Image buffers are megabytes each and live for
//! one request; glibc's malloc, by default, raises its mmap threshold every time such
//! a block is freed (up to 32 MiB), so later image buffers land in the heap arenas,
//! where a freed block in the middle of a heap is not returned: after a burst, the
//! resident size stays near its peak for good. A fixed threshold keeps every
//! buffer above it in a mapping of its own, unmapped the moment it is freed, and a
//! trim after a burst hands back the arenas' free pages.

/// Blocks of at least this size get their own mapping.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD: libc::c_int = 128 * 1024;

/// Set the allocator up for megabyte-sized, short-lived buffers. Call once, before
/// any thread starts.
pub fn tune() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes glibc's allocation parameters; it is called before
    // the runtime's threads exist, and the values are within glibc's documented ranges.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
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
