//! Pages of a JSON-lines file, read without loading the file: leftovers
//! and dead-letter files can be gigabytes, and a viewer asking for page
//! 1 000 000 of one must cost the server a seek, not the file's size.
//!
//! A sparse [`LineIndex`] (the byte offset of every [`STRIDE`]th line) is
//! built once per file by streaming through it, then cached by path, size
//! and modification time. A page is then one seek and at most
//! `STRIDE + limit` short reads. Concurrent first requests for the same
//! file wait for one index rather than each building their own.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::SystemTime;

/// Lines between two indexed offsets: 8 bytes of index per 1024 lines.
pub const STRIDE: usize = 1024;

/// Longest line returned whole; longer ones are cut, so one page can
/// never hold more than `limit × MAX_LINE` bytes.
pub const MAX_LINE: usize = 64 << 10;

/// Files whose index is kept; beyond this the cache starts afresh.
const MAX_CACHED: usize = 256;

/// Where every [`STRIDE`]th line of a file starts, and how many lines it has.
#[derive(Debug)]
pub struct LineIndex {
    offsets: Vec<u64>,
    total: usize,
}

impl LineIndex {
    /// Streams through `file` once, noting offsets.
    fn build(file: File) -> std::io::Result<Self> {
        let mut reader = BufReader::with_capacity(256 << 10, file);
        let mut offsets = vec![0];
        let (mut total, mut pos, mut in_line) = (0usize, 0u64, false);
        loop {
            let buf = reader.fill_buf()?;
            if buf.is_empty() {
                break;
            }
            let n = buf.len();
            for (i, &b) in buf.iter().enumerate() {
                if b == b'\n' {
                    total += 1;
                    in_line = false;
                    if total.is_multiple_of(STRIDE) {
                        offsets.push(pos + i as u64 + 1);
                    }
                } else {
                    in_line = true;
                }
            }
            pos += n as u64;
            reader.consume(n);
        }
        // A last line without a newline still counts.
        if in_line {
            total += 1;
        }
        Ok(Self { offsets, total })
    }

    /// Lines in the file.
    pub fn total(&self) -> usize {
        self.total
    }
}

type Key = (PathBuf, u64, Option<SystemTime>);
type Slot = Arc<OnceLock<Result<Arc<LineIndex>, String>>>;

fn cache() -> &'static Mutex<HashMap<Key, Slot>> {
    static CACHE: OnceLock<Mutex<HashMap<Key, Slot>>> = OnceLock::new();
    CACHE.get_or_init(Default::default)
}

/// The index of `path` as it is now, built at most once per version.
fn index_of(path: &Path, file: &File) -> std::io::Result<Arc<LineIndex>> {
    let meta = file.metadata()?;
    let key = (path.to_path_buf(), meta.len(), meta.modified().ok());
    let slot = {
        let mut cache = cache().lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= MAX_CACHED && !cache.contains_key(&key) {
            cache.clear();
        }
        cache.entry(key).or_default().clone()
    };
    slot.get_or_init(|| {
        file.try_clone()
            .and_then(LineIndex::build)
            .map(Arc::new)
            .map_err(|e| e.to_string())
    })
    .clone()
    .map_err(std::io::Error::other)
}

/// Lines `offset..offset + limit` of the file at `path` (each cut at
/// [`MAX_LINE`] bytes), and how many lines the file has.
pub fn page(path: &Path, offset: usize, limit: usize) -> std::io::Result<(Vec<String>, usize)> {
    let mut file = File::open(path)?;
    let index = index_of(path, &file)?;
    if offset >= index.total {
        return Ok((Vec::new(), index.total));
    }
    file.seek(SeekFrom::Start(index.offsets[offset / STRIDE]))?;
    let mut reader = BufReader::new(file);
    let mut skip = offset % STRIDE;
    let mut lines = Vec::with_capacity(limit.min(index.total - offset));
    let mut buf = Vec::new();
    while lines.len() < limit {
        buf.clear();
        // Read at most MAX_LINE bytes of the line, then discard the rest.
        let n = (&mut reader)
            .take(MAX_LINE as u64)
            .read_until(b'\n', &mut buf)?;
        if n == 0 {
            break;
        }
        if buf.last() != Some(&b'\n') {
            // Cut: skip to the end of this line.
            let mut rest = Vec::new();
            loop {
                rest.clear();
                let m = (&mut reader)
                    .take(MAX_LINE as u64)
                    .read_until(b'\n', &mut rest)?;
                if m == 0 || rest.last() == Some(&b'\n') {
                    break;
                }
            }
        }
        if skip > 0 {
            skip -= 1;
            continue;
        }
        let text = String::from_utf8_lossy(&buf);
        lines.push(text.trim_end_matches(['\n', '\r']).to_owned());
    }
    Ok((lines, index.total))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn file_of(lines: usize, tail_newline: bool) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        for i in 0..lines {
            if i + 1 == lines && !tail_newline {
                write!(f, "line {i}").unwrap();
            } else {
                writeln!(f, "line {i}").unwrap();
            }
        }
        f.flush().unwrap();
        f
    }

    #[test]
    fn pages_anywhere_in_the_file() {
        let f = file_of(5000, true);
        let (page0, total) = page(f.path(), 0, 3).unwrap();
        assert_eq!(total, 5000);
        assert_eq!(page0, ["line 0", "line 1", "line 2"]);
        for start in [1023, 1024, 1025, 2047, 4998] {
            let (p, _) = page(f.path(), start, 2).unwrap();
            let want: Vec<String> = (start..(start + 2).min(5000))
                .map(|i| format!("line {i}"))
                .collect();
            assert_eq!(p, want, "from {start}");
        }
        assert!(page(f.path(), 5000, 10).unwrap().0.is_empty());
    }

    #[test]
    fn a_last_line_without_newline_counts() {
        let f = file_of(3, false);
        let (p, total) = page(f.path(), 2, 10).unwrap();
        assert_eq!((p, total), (vec!["line 2".to_owned()], 3));
    }

    #[test]
    fn long_lines_are_cut_and_do_not_shift_the_next() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        writeln!(f, "{}", "x".repeat(MAX_LINE * 3)).unwrap();
        writeln!(f, "after").unwrap();
        f.flush().unwrap();
        let (p, total) = page(f.path(), 0, 2).unwrap();
        assert_eq!(total, 2);
        assert_eq!(p[0].len(), MAX_LINE);
        assert_eq!(p[1], "after");
    }

    /// Peak resident memory of this process, from /proc (kB).
    fn peak_rss_kb() -> u64 {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap()
    }

    #[test]
    fn concurrent_pages_of_a_large_file_keep_memory_bounded() {
        // 200 MB of lines; four readers at once ask for pages in the middle.
        let mut f = tempfile::NamedTempFile::new().unwrap();
        {
            let mut w = std::io::BufWriter::new(f.as_file_mut());
            let line = format!("{{\"item\":\"{}\"}}\n", "y".repeat(190));
            for _ in 0..1_000_000 {
                w.write_all(line.as_bytes()).unwrap();
            }
        }
        let before = peak_rss_kb();
        let path = f.path().to_path_buf();
        std::thread::scope(|s| {
            for k in 0..4 {
                let path = &path;
                s.spawn(move || {
                    let (p, total) = page(path, 500_000 + k * 1000, 1000).unwrap();
                    assert_eq!(total, 1_000_000);
                    assert_eq!(p.len(), 1000);
                });
            }
        });
        let grew_mb = (peak_rss_kb().saturating_sub(before)) / 1024;
        assert!(
            grew_mb < 64,
            "reading pages of a 200 MB file raised peak RSS by {grew_mb} MB"
        );
    }
}
