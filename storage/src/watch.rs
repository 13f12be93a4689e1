//! Knowing whether DuckDB wrote the main file since we last looked, without scanning it.
//!
//! inotify `IN_MODIFY` gives an event for every write (FACTS.md: exact, where mtime is only a
//! hint). When inotify is unavailable the watch says "modified" every time, and the writer
//! scans: slower, never wrong.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// An inotify watch on one file.
#[derive(Debug)]
pub(crate) struct ModifyWatch {
    fd: Option<libc::c_int>,
}

impl ModifyWatch {
    /// Watches `path` for writes. Never fails: without inotify every check reports a write.
    pub(crate) fn new(path: &Path) -> Self {
        let Ok(c_path) = CString::new(path.as_os_str().as_bytes()) else {
            return Self { fd: None };
        };
        // SAFETY: plain syscalls on a descriptor we own; the path is a valid C string.
        let fd = unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) };
        if fd < 0 {
            return Self { fd: None };
        }
        // SAFETY: as above.
        let wd = unsafe { libc::inotify_add_watch(fd, c_path.as_ptr(), libc::IN_MODIFY) };
        if wd < 0 {
            // SAFETY: fd is ours and open.
            unsafe { libc::close(fd) };
            return Self { fd: None };
        }
        Self { fd: Some(fd) }
    }

    /// Whether the file was written since the last call (or since the watch began).
    pub(crate) fn take_modified(&self) -> bool {
        let Some(fd) = self.fd else { return true };
        let mut buf = [0u8; 4096];
        let mut any = false;
        loop {
            // SAFETY: reading into a buffer we own, of the length we pass.
            let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
            if n > 0 {
                any = true;
                continue;
            }
            if n < 0 && std::io::Error::last_os_error().raw_os_error() != Some(libc::EAGAIN) {
                return true;
            }
            return any;
        }
    }
}

impl Drop for ModifyWatch {
    fn drop(&mut self) {
        if let Some(fd) = self.fd {
            // SAFETY: fd is ours and open; closing it removes the watch.
            unsafe { libc::close(fd) };
        }
    }
}
