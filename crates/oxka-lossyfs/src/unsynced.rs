//! Per-file bookkeeping of what is not durable: the file's durable size
//! and the durable bytes overwritten or cut since its last fsync.
//!
//! Invariant: every byte of `[0, durable_size)` either is in `saved` or
//! still holds its durable value in the backing file. So saving the bytes
//! of a range just before they change (a write over them, a truncation
//! below them) is enough to put the durable content back later: set the
//! length to `durable_size`, write `saved` back. Memory is the durable
//! bytes overwritten or cut since the last fsync of the file, each byte
//! saved at most once (bytes appended past the durable size cost nothing).

use std::collections::BTreeMap;
use std::io;

/// What [`Unsynced`] needs of a file.
pub trait Backing {
    /// Reads at `off`; short only at end of file.
    fn read_at(&mut self, buf: &mut [u8], off: u64) -> io::Result<usize>;
    fn write_all_at(&mut self, buf: &[u8], off: u64) -> io::Result<()>;
    fn set_len(&mut self, len: u64) -> io::Result<()>;
}

impl Backing for std::fs::File {
    fn read_at(&mut self, buf: &mut [u8], off: u64) -> io::Result<usize> {
        std::os::unix::fs::FileExt::read_at(self, buf, off)
    }
    fn write_all_at(&mut self, buf: &[u8], off: u64) -> io::Result<()> {
        std::os::unix::fs::FileExt::write_all_at(self, buf, off)
    }
    fn set_len(&mut self, len: u64) -> io::Result<()> {
        std::fs::File::set_len(self, len)
    }
}

/// A file changed since its last fsync (a clean file has none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsynced {
    durable_size: u64,
    /// Disjoint ranges of durable bytes, by start offset.
    saved: BTreeMap<u64, Vec<u8>>,
}

impl Unsynced {
    /// A file whose durable content is what it holds now, `size` bytes.
    pub fn new(size: u64) -> Unsynced {
        Unsynced {
            durable_size: size,
            saved: BTreeMap::new(),
        }
    }

    pub fn durable_size(&self) -> u64 {
        self.durable_size
    }

    /// Bytes held to restore overwritten or cut durable content.
    pub fn saved_bytes(&self) -> u64 {
        self.saved.values().map(|v| v.len() as u64).sum()
    }

    /// The saved ranges, `(start, end)` in order.
    pub fn saved_ranges(&self) -> Vec<(u64, u64)> {
        self.saved
            .iter()
            .map(|(&k, v)| (k, k + v.len() as u64))
            .collect()
    }

    /// The parts of `[start, end)` not yet saved, in order.
    fn missing(&self, start: u64, end: u64) -> Vec<(u64, u64)> {
        let mut out = Vec::new();
        let mut pos = start;
        if let Some((&k, v)) = self.saved.range(..=start).next_back() {
            pos = pos.max(k + v.len() as u64);
        }
        for (&k, v) in self.saved.range(start..end) {
            if k > pos {
                out.push((pos, k));
            }
            pos = pos.max(k + v.len() as u64);
        }
        if pos < end {
            out.push((pos, end));
        }
        out
    }

    /// To be called just before bytes `[start, end)` of `file` change
    /// (written, cut by a truncation, zeroed): saves the durable ones not
    /// saved yet.
    pub fn before_change(
        &mut self,
        file: &mut impl Backing,
        start: u64,
        end: u64,
    ) -> io::Result<()> {
        let end = end.min(self.durable_size);
        if start >= end {
            return Ok(());
        }
        for (a, b) in self.missing(start, end) {
            let mut buf = vec![0u8; (b - a) as usize];
            let mut got = 0;
            while got < buf.len() {
                let n = file.read_at(&mut buf[got..], a + got as u64)?;
                if n == 0 {
                    break; // shorter than we knew: the rest reads as zeros
                }
                got += n;
            }
            self.saved.insert(a, buf);
        }
        Ok(())
    }

    /// Puts the durable content back: the durable size, then the saved
    /// bytes. Returns the bytes written back.
    pub fn restore(&self, file: &mut impl Backing) -> io::Result<u64> {
        file.set_len(self.durable_size)?;
        let mut n = 0;
        for (&k, v) in &self.saved {
            file.write_all_at(v, k)?;
            n += v.len() as u64;
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An in-memory file.
    #[derive(Default, Clone, Debug, PartialEq)]
    struct Mem(Vec<u8>);

    impl Backing for Mem {
        fn read_at(&mut self, buf: &mut [u8], off: u64) -> io::Result<usize> {
            let off = off as usize;
            if off >= self.0.len() {
                return Ok(0);
            }
            let n = buf.len().min(self.0.len() - off);
            buf[..n].copy_from_slice(&self.0[off..off + n]);
            Ok(n)
        }
        fn write_all_at(&mut self, buf: &[u8], off: u64) -> io::Result<()> {
            let end = off as usize + buf.len();
            if self.0.len() < end {
                self.0.resize(end, 0);
            }
            self.0[off as usize..end].copy_from_slice(buf);
            Ok(())
        }
        fn set_len(&mut self, len: u64) -> io::Result<()> {
            self.0.resize(len as usize, 0);
            Ok(())
        }
    }

    /// A write as the file system does it.
    fn write(f: &mut Mem, u: &mut Unsynced, off: u64, data: &[u8]) {
        u.before_change(f, off, off + data.len() as u64).unwrap();
        f.write_all_at(data, off).unwrap();
    }

    fn truncate(f: &mut Mem, u: &mut Unsynced, len: u64) {
        u.before_change(f, len, u64::MAX).unwrap();
        f.set_len(len).unwrap();
    }

    #[test]
    fn missing_parts_skip_what_is_saved() {
        let mut u = Unsynced::new(100);
        assert_eq!(u.missing(10, 20), vec![(10, 20)]);
        u.saved.insert(10, vec![0; 5]); // [10, 15)
        u.saved.insert(30, vec![0; 10]); // [30, 40)
        assert_eq!(u.missing(0, 50), vec![(0, 10), (15, 30), (40, 50)]);
        assert_eq!(u.missing(12, 14), vec![]);
        assert_eq!(u.missing(12, 32), vec![(15, 30)]);
        assert_eq!(u.missing(15, 30), vec![(15, 30)]);
        assert_eq!(u.missing(35, 45), vec![(40, 45)]);
        assert_eq!(u.missing(40, 40), vec![]);
    }

    #[test]
    fn appends_past_the_durable_size_save_nothing_and_are_cut() {
        let mut f = Mem(b"durable".to_vec());
        let mut u = Unsynced::new(7);
        write(&mut f, &mut u, 7, b" and not");
        assert_eq!(u.saved_bytes(), 0);
        assert_eq!(u.restore(&mut f).unwrap(), 0);
        assert_eq!(f.0, b"durable");
    }

    #[test]
    fn overwritten_durable_bytes_are_saved_once_and_put_back() {
        let mut f = Mem(b"0123456789".to_vec());
        let mut u = Unsynced::new(10);
        write(&mut f, &mut u, 2, b"ab");
        write(&mut f, &mut u, 1, b"XYZW"); // [1, 5): only 1 and 4 are new
        write(&mut f, &mut u, 8, b"tail past the end");
        assert_eq!(u.saved_ranges(), vec![(1, 2), (2, 4), (4, 5), (8, 10)]);
        assert_eq!(u.saved_bytes(), 6);
        u.restore(&mut f).unwrap();
        assert_eq!(f.0, b"0123456789");
    }

    #[test]
    fn a_cut_then_regrown_file_gets_its_durable_tail_back() {
        let mut f = Mem(b"0123456789".to_vec());
        let mut u = Unsynced::new(10);
        truncate(&mut f, &mut u, 3);
        write(&mut f, &mut u, 5, b"zz"); // the hole [3, 5) reads as zeros now
        truncate(&mut f, &mut u, 20);
        assert_eq!(u.saved_ranges(), vec![(3, 10)]);
        u.restore(&mut f).unwrap();
        assert_eq!(f.0, b"0123456789");
    }

    /// Random writes, truncations and fsyncs against a model that keeps
    /// a copy of the content at each fsync: a power cut at any point must
    /// give that copy back, byte for byte.
    #[test]
    fn random_histories_come_back_to_the_last_fsync() {
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        for round in 0..500 {
            let initial: Vec<u8> = (0..next(64)).map(|i| i as u8).collect();
            let mut f = Mem(initial.clone());
            let mut durable = initial;
            let mut u = Unsynced::new(f.0.len() as u64);
            for step in 0..next(40) {
                match next(10) {
                    0 => {
                        // fsync
                        durable = f.0.clone();
                        u = Unsynced::new(f.0.len() as u64);
                    }
                    1 | 2 => truncate(&mut f, &mut u, next(96)),
                    _ => {
                        let off = next(96);
                        let data: Vec<u8> = (0..next(32))
                            .map(|i| (round + step + i) as u8 | 0x80)
                            .collect();
                        write(&mut f, &mut u, off, &data);
                    }
                }
                assert!(u.saved_bytes() <= u.durable_size());
            }
            u.restore(&mut f).unwrap();
            assert_eq!(f.0, durable, "round {round}");
        }
    }
}
