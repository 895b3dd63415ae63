//! Positional file I/O, so reads can share a `&File` with appends and
//! never depend on a cursor; and [`FileRegion`], the zero-copy result of a
//! read.

use std::fs::File;
use std::io;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;

/// A byte range of a segment's data file: what a fetch hands to the
/// network instead of the bytes themselves, so that they can go from the
/// page cache to the socket (`sendfile`) without a copy into user space.
///
/// The region keeps the file open through an `Arc`: retention, the
/// cleaner's swap or a topic deletion may remove the segment after the
/// read, and an unlinked file stays readable while a descriptor is open,
/// so the bytes the read chose are still the ones sent. Its length is what
/// was valid when the read ran (whole batches below the read's upper
/// bound); appends only ever add bytes after it. Only a truncation (a log
/// cut back below the region) can shorten the file afterwards: readers see
/// that as an early end of file and must fail rather than send less.
#[derive(Clone, Debug)]
pub struct FileRegion {
    file: Arc<File>,
    position: u64,
    len: usize,
}

impl FileRegion {
    pub(crate) fn new(file: Arc<File>, position: u64, len: usize) -> FileRegion {
        FileRegion {
            file,
            position,
            len,
        }
    }

    /// The open data file (for `sendfile`'s input descriptor).
    pub fn file(&self) -> &File {
        &self.file
    }

    /// Where the region starts in the file.
    pub fn position(&self) -> u64 {
        self.position
    }

    /// Bytes in the region.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the region holds no bytes.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Fills `buf` from `offset` bytes into the region (the copying
    /// fallback when a socket cannot take a file). Reading past the
    /// region's end is an `InvalidInput` error; a file truncated since
    /// the read gives `UnexpectedEof`.
    pub fn read_at(&self, offset: usize, buf: &mut [u8]) -> io::Result<()> {
        let end = offset.checked_add(buf.len());
        if end.is_none_or(|e| e > self.len) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "read of {} bytes at {offset} past a {}-byte file region",
                    buf.len(),
                    self.len
                ),
            ));
        }
        read_exact_at(&self.file, buf, self.position + offset as u64)
    }

    /// Copies the whole region into memory.
    pub fn to_bytes(&self) -> io::Result<Bytes> {
        let mut buf = vec![0u8; self.len];
        self.read_at(0, &mut buf)?;
        Ok(Bytes::from(buf))
    }
}

#[cfg(unix)]
pub(crate) fn read_exact_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, buf, offset)
}

#[cfg(unix)]
pub(crate) fn write_all_at(file: &File, buf: &[u8], offset: u64) -> io::Result<()> {
    std::os::unix::fs::FileExt::write_all_at(file, buf, offset)
}

/// Writes `pieces` back to back from `offset` with `pwritev(2)`: an append
/// made of patched batch headers and untouched request bytes goes to the
/// page cache without first being gathered into one buffer.
#[cfg(unix)]
pub(crate) fn write_all_vectored_at(file: &File, pieces: &[&[u8]], offset: u64) -> io::Result<()> {
    /// POSIX guarantees at least 16 iovecs per call, Linux allows 1024.
    const MAX_IOVECS: usize = 1024;
    let mut pieces: Vec<&[u8]> = pieces.iter().copied().filter(|p| !p.is_empty()).collect();
    let mut start = 0;
    let mut offset = offset;
    while start < pieces.len() {
        let iov: Vec<io::IoSlice<'_>> = pieces[start..pieces.len().min(start + MAX_IOVECS)]
            .iter()
            .map(|p| io::IoSlice::new(p))
            .collect();
        let mut written = match rustix::io::pwritev(file, &iov, offset) {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::WriteZero,
                    "pwritev wrote nothing",
                ))
            }
            Ok(n) => n,
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        };
        offset += written as u64;
        // Skip what was written: whole pieces, then part of one.
        while written > 0 && start < pieces.len() {
            let len = pieces[start].len();
            if written >= len {
                written -= len;
                start += 1;
            } else {
                pieces[start] = &pieces[start][written..];
                written = 0;
            }
        }
    }
    Ok(())
}

#[cfg(not(unix))]
pub(crate) fn write_all_vectored_at(
    file: &File,
    pieces: &[&[u8]],
    mut offset: u64,
) -> io::Result<()> {
    for p in pieces {
        write_all_at(file, p, offset)?;
        offset += p.len() as u64;
    }
    Ok(())
}

#[cfg(windows)]
pub(crate) fn read_exact_at(file: &File, mut buf: &mut [u8], mut offset: u64) -> io::Result<()> {
    use std::os::windows::fs::FileExt;
    while !buf.is_empty() {
        match file.seek_read(buf, offset) {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "failed to fill whole buffer",
                ))
            }
            Ok(n) => {
                buf = &mut buf[n..];
                offset += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(windows)]
pub(crate) fn write_all_at(file: &File, mut buf: &[u8], mut offset: u64) -> io::Result<()> {
    use std::os::windows::fs::FileExt;
    while !buf.is_empty() {
        match file.seek_write(buf, offset) {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::WriteZero,
                    "failed to write whole buffer",
                ))
            }
            Ok(n) => {
                buf = &buf[n..];
                offset += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Makes a directory's entries (created, renamed or removed files)
/// durable; without it a crash can lose a file whose data was synced.
#[cfg(unix)]
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Windows cannot open directories for syncing; NTFS journals metadata.
#[cfg(windows)]
pub(crate) fn sync_dir(_dir: &Path) -> io::Result<()> {
    Ok(())
}
