//! The one place with `unsafe`: a kernel hint no safe crate in the tree exposes.

use std::fs::File;

/// Asks the kernel to start writing a range back to disk now, without waiting, so the fsync at
/// the end of a large blob finds most of it already written. Only a hint: errors are ignored
/// (the fsync that follows reports real ones).
pub(super) fn start_writeback(file: &File, offset: u64, len: u64) {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        #[allow(unsafe_code)]
        // SAFETY: a plain syscall on a file descriptor we own, with no pointers.
        unsafe {
            libc::sync_file_range(
                file.as_raw_fd(),
                // Offsets within one file never exceed i64::MAX.
                offset.cast_signed(),
                len.cast_signed(),
                libc::SYNC_FILE_RANGE_WRITE,
            );
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (file, offset, len);
}
