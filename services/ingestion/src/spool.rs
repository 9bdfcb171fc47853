//! A local write-ahead spool for MQTT messages.
//!
//! The MQTT client library acknowledges a QoS 1 message to the broker before the application
//! sees it, so a message the service has received but not yet committed would be lost if the
//! process died. Each message is therefore appended here (one `write(2)`, which survives the
//! process being killed) before it enters the pipeline, and replayed at start-up unless a
//! database commit covered it. Replays are harmless: writes are idempotent.
//!
//! Layout: segment files `seg-{first id}.log` of length-prefixed, CRC-checked records, and a
//! `checkpoint` file holding the highest id known committed. Segments wholly below the
//! checkpoint are deleted.

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const MAGIC: u8 = 0xA5;
const HEADER: usize = 1 + 4 + 4;
const SEGMENT_BYTES: u64 = 64 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("spool I/O on {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("spool record too large ({0} bytes)")]
    TooLarge(usize),
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> SpoolError + '_ {
    move |source| SpoolError::Io {
        path: path.to_owned(),
        source,
    }
}

/// A spooled MQTT message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpoolRecord {
    pub id: u64,
    pub topic: String,
    pub content_type: Option<String>,
    pub traceparent: Option<String>,
    pub payload: Vec<u8>,
}

#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
    current: File,
    current_path: PathBuf,
    current_size: u64,
    /// First id of each live segment, oldest first (the last is `current`).
    segments: VecDeque<(u64, PathBuf)>,
    next_id: u64,
    committed: u64,
    fsync_every: Option<Duration>,
    last_sync: Instant,
}

impl Spool {
    /// Opens (or creates) the spool and returns the records still to replay, in order.
    pub fn open(dir: &Path, fsync_ms: u64) -> Result<(Self, Vec<SpoolRecord>), SpoolError> {
        fs::create_dir_all(dir).map_err(io_err(dir))?;
        let committed = read_checkpoint(dir)?;
        let mut segments: Vec<(u64, PathBuf)> = Vec::new();
        for entry in fs::read_dir(dir).map_err(io_err(dir))? {
            let path = entry.map_err(io_err(dir))?.path();
            let first = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_prefix("seg-"))
                .and_then(|n| n.strip_suffix(".log"))
                .and_then(|n| n.parse::<u64>().ok());
            if let Some(first) = first {
                segments.push((first, path));
            }
        }
        segments.sort();

        let mut replay = Vec::new();
        let mut max_id = committed;
        for (_, path) in &segments {
            for rec in read_segment(path)? {
                max_id = max_id.max(rec.id);
                if rec.id > committed {
                    replay.push(rec);
                }
            }
        }
        let next_id = max_id + 1;
        // Always start a fresh segment: a torn record at the end of the last one stays behind
        // and is skipped by the reader.
        let current_path = dir.join(format!("seg-{next_id:020}.log"));
        let current = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&current_path)
            .map_err(io_err(&current_path))?;
        segments.push((next_id, current_path.clone()));
        let spool = Self {
            dir: dir.to_owned(),
            current,
            current_path,
            current_size: 0,
            segments: segments.into(),
            next_id,
            committed,
            fsync_every: (fsync_ms > 0).then(|| Duration::from_millis(fsync_ms)),
            last_sync: Instant::now(),
        };
        Ok((spool, replay))
    }

    /// Appends one message and returns its id. The id is taken even when the write fails
    /// (the message still flows on; it just could not be made crash-safe), and the spool then
    /// moves to a fresh segment so a torn record cannot hide the ones after it.
    pub fn append(
        &mut self,
        topic: &str,
        content_type: Option<&str>,
        traceparent: Option<&str>,
        payload: &[u8],
    ) -> (u64, Result<(), SpoolError>) {
        let id = self.next_id;
        self.next_id += 1;
        let result = self.write_record(id, topic, content_type, traceparent, payload);
        if result.is_err() {
            if let Err(e) = self.roll() {
                tracing::error!(error = %e, "cannot start a new spool segment");
            }
        }
        (id, result)
    }

    fn write_record(
        &mut self,
        id: u64,
        topic: &str,
        content_type: Option<&str>,
        traceparent: Option<&str>,
        payload: &[u8],
    ) -> Result<(), SpoolError> {
        let body = encode_body(id, topic, content_type, traceparent, payload)?;
        let len = u32::try_from(body.len()).map_err(|_| SpoolError::TooLarge(body.len()))?;
        let mut rec = Vec::with_capacity(HEADER + body.len());
        rec.push(MAGIC);
        rec.extend_from_slice(&len.to_le_bytes());
        rec.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
        rec.extend_from_slice(&body);
        if self.current_size + rec.len() as u64 > SEGMENT_BYTES {
            self.roll()?;
        }
        self.current
            .write_all(&rec)
            .map_err(io_err(&self.current_path))?;
        self.current_size += rec.len() as u64;
        if let Some(every) = self.fsync_every {
            if self.last_sync.elapsed() >= every {
                self.current
                    .sync_data()
                    .map_err(io_err(&self.current_path))?;
                self.last_sync = Instant::now();
            }
        }
        Ok(())
    }

    fn roll(&mut self) -> Result<(), SpoolError> {
        let path = self.dir.join(format!("seg-{:020}.log", self.next_id));
        self.current = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io_err(&path))?;
        self.current_path = path.clone();
        self.current_size = 0;
        self.segments.push_back((self.next_id, path));
        Ok(())
    }

    /// Records that every id up to `id` is committed: persists the checkpoint and deletes the
    /// segments that hold nothing newer.
    pub fn commit_through(&mut self, id: u64) -> Result<(), SpoolError> {
        if id <= self.committed {
            return Ok(());
        }
        self.committed = id;
        write_checkpoint(&self.dir, id)?;
        // A segment is done when the next one starts at or below id + 1.
        while self.segments.len() > 1 && self.segments[1].0 <= id + 1 {
            if let Some((_, path)) = self.segments.pop_front() {
                fs::remove_file(&path).map_err(io_err(&path))?;
            }
        }
        Ok(())
    }

    pub fn committed(&self) -> u64 {
        self.committed
    }

    /// Appended but not yet committed.
    pub fn pending(&self) -> u64 {
        self.next_id - 1 - self.committed
    }
}

fn put_str(out: &mut Vec<u8>, s: &str) -> Result<(), SpoolError> {
    let len = u16::try_from(s.len()).map_err(|_| SpoolError::TooLarge(s.len()))?;
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(s.as_bytes());
    Ok(())
}

fn encode_body(
    id: u64,
    topic: &str,
    content_type: Option<&str>,
    traceparent: Option<&str>,
    payload: &[u8],
) -> Result<Vec<u8>, SpoolError> {
    let mut b = Vec::with_capacity(8 + 6 + topic.len() + payload.len() + 64);
    b.extend_from_slice(&id.to_le_bytes());
    put_str(&mut b, topic)?;
    // 0xFFFF marks "absent", distinct from an empty string.
    for opt in [content_type, traceparent] {
        match opt {
            Some(s) => put_str(&mut b, s)?,
            None => b.extend_from_slice(&u16::MAX.to_le_bytes()),
        }
    }
    b.extend_from_slice(payload);
    Ok(b)
}

struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (h, t) = self.0.split_at(n);
        self.0 = t;
        Some(h)
    }
    fn u16(&mut self) -> Option<u16> {
        self.take(2)
            .and_then(|b| b.try_into().ok())
            .map(u16::from_le_bytes)
    }
    fn string(&mut self) -> Option<Option<String>> {
        let len = self.u16()?;
        if len == u16::MAX {
            return Some(None);
        }
        let bytes = self.take(usize::from(len))?;
        Some(Some(String::from_utf8_lossy(bytes).into_owned()))
    }
}

fn decode_body(body: &[u8]) -> Option<SpoolRecord> {
    let mut c = Cursor(body);
    let id = u64::from_le_bytes(c.take(8)?.try_into().ok()?);
    let topic = c.string()??;
    let content_type = c.string()?;
    let traceparent = c.string()?;
    Some(SpoolRecord {
        id,
        topic,
        content_type,
        traceparent,
        payload: c.0.to_vec(),
    })
}

/// Reads a segment up to its first torn or corrupt record.
fn read_segment(path: &Path) -> Result<Vec<SpoolRecord>, SpoolError> {
    let mut data = Vec::new();
    File::open(path)
        .and_then(|mut f| f.read_to_end(&mut data))
        .map_err(io_err(path))?;
    let mut out = Vec::new();
    let mut rest = data.as_slice();
    while rest.len() >= HEADER && rest[0] == MAGIC {
        let len = u32::from_le_bytes([rest[1], rest[2], rest[3], rest[4]]) as usize;
        let crc = u32::from_le_bytes([rest[5], rest[6], rest[7], rest[8]]);
        let Some(body) = rest.get(HEADER..HEADER + len) else {
            break;
        };
        if crc32fast::hash(body) != crc {
            break;
        }
        match decode_body(body) {
            Some(rec) => out.push(rec),
            None => break,
        }
        rest = &rest[HEADER + len..];
    }
    Ok(out)
}

fn read_checkpoint(dir: &Path) -> Result<u64, SpoolError> {
    let path = dir.join("checkpoint");
    match fs::read_to_string(&path) {
        Ok(s) => Ok(s.trim().parse().unwrap_or(0)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(0),
        Err(e) => Err(io_err(&path)(e)),
    }
}

fn write_checkpoint(dir: &Path, id: u64) -> Result<(), SpoolError> {
    let tmp = dir.join("checkpoint.tmp");
    let path = dir.join("checkpoint");
    fs::write(&tmp, id.to_string()).map_err(io_err(&tmp))?;
    fs::rename(&tmp, &path).map_err(io_err(&path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn uncommitted_records_are_replayed_after_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let (mut s, replay) = Spool::open(dir.path(), 0).unwrap();
        assert!(replay.is_empty());
        for i in 0..10u8 {
            s.append(
                "aurum/v1/demo/M/telemetry",
                Some("application/json"),
                None,
                &[i],
            )
            .1
            .unwrap();
        }
        s.commit_through(4).unwrap();
        drop(s);
        let (s, replay) = Spool::open(dir.path(), 0).unwrap();
        assert_eq!(
            replay.iter().map(|r| r.id).collect::<Vec<_>>(),
            (5..=10).collect::<Vec<_>>()
        );
        assert_eq!(replay[0].payload, vec![4]);
        assert_eq!(replay[0].content_type.as_deref(), Some("application/json"));
        assert_eq!(replay[0].traceparent, None);
        assert_eq!(s.pending(), 6);
    }

    #[test]
    fn a_torn_tail_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let (mut s, _) = Spool::open(dir.path(), 0).unwrap();
        s.append("t", None, Some("00-abc-def-01"), b"ok").1.unwrap();
        let path = s.current_path.clone();
        drop(s);
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(&[MAGIC, 200, 0, 0, 0, 1, 2]).unwrap();
        let (_, replay) = Spool::open(dir.path(), 0).unwrap();
        assert_eq!(replay.len(), 1);
        assert_eq!(replay[0].traceparent.as_deref(), Some("00-abc-def-01"));
    }

    #[test]
    fn committed_segments_are_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let (mut s, _) = Spool::open(dir.path(), 0).unwrap();
        s.append("t", None, None, b"a").1.unwrap();
        s.roll().unwrap();
        s.append("t", None, None, b"b").1.unwrap();
        s.commit_through(2).unwrap();
        let segs = fs::read_dir(dir.path())
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .starts_with("seg-")
            })
            .count();
        assert_eq!(segs, 1);
        drop(s);
        let (_, replay) = Spool::open(dir.path(), 0).unwrap();
        assert!(replay.is_empty());
    }

    proptest! {
        #[test]
        fn records_roundtrip(topic in "\\PC{0,40}", ct in proptest::option::of("\\PC{0,20}"),
                             tp in proptest::option::of("[0-9a-f-]{0,55}"),
                             payload in proptest::collection::vec(any::<u8>(), 0..300)) {
            let body = encode_body(7, &topic, ct.as_deref(), tp.as_deref(), &payload).unwrap();
            let rec = decode_body(&body).unwrap();
            prop_assert_eq!(rec, SpoolRecord { id: 7, topic, content_type: ct, traceparent: tp, payload });
        }

        #[test]
        fn reading_garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode_body(&bytes);
        }
    }
}
