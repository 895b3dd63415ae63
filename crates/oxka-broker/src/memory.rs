//! Gives freed heap memory back to the operating system.
//!
//! glibc's allocator keeps what a burst freed (many connections' request
//! buffers, a large fetch) in its per-thread arenas, so a broker's RSS
//! stays at the burst's peak long after the burst; operators then see a
//! broker that "uses" memory it does not. `malloc_trim` returns the free
//! pages at the top of each arena and `madvise`s the free ones inside. It
//! runs on a timer, not after every free, so the hot path never pays for
//! it; between two runs freed memory is reused by the allocator as usual.

use std::time::Duration;

/// How often free memory is returned: rarely enough that the scan of the
/// arenas costs nothing measurable, soon enough after a burst.
pub const RELEASE_INTERVAL: Duration = Duration::from_secs(10);

/// Returns free heap pages to the OS (a no-op where the allocator is not
/// glibc's).
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks the allocator's own free lists; it
    // takes no pointers from us and is thread-safe.
    unsafe {
        libc::malloc_trim(0);
    }
}
