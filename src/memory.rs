//! Giving freed heap back to the kernel. glibc keeps memory freed after a large answer (an
//! all-namespace LIST of 150,000 pods builds tens of MiB of rows and JSON) or after the
//! informers' first LIST in its per-thread arenas, so RSS would stay near the peak for good.
//! A background thread calls `malloc_trim` every [`TRIM_INTERVAL`], off the request path.

use std::time::Duration;

/// How often freed heap is returned to the kernel.
pub const TRIM_INTERVAL: Duration = Duration::from_secs(10);

/// Starts the trimming thread (glibc only; other C libraries return memory by themselves or
/// have no such call).
pub fn spawn_trimmer() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let spawned = std::thread::Builder::new().name("malloc-trim".into()).spawn(|| {
            loop {
                std::thread::sleep(TRIM_INTERVAL);
                // SAFETY: malloc_trim only walks and releases glibc's own free lists; it is
                // thread-safe and takes no pointers from us.
                unsafe {
                    libc::malloc_trim(0);
                }
            }
        });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "cannot start the heap trimming thread");
        }
    }
}
