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
//!
//! Replay streams: records are read one at a time as they are handed on, so memory does not
//! grow with the spool. A record whose payload is over the size limit (spooled by a version
//! that checked the size only afterwards) is never loaded: its first bytes are read, the rest
//! is only checked against the CRC, and it is replayed cut, to be quarantined like a live
//! oversized message.

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const MAGIC: u8 = 0xA5;
const HEADER: usize = 1 + 4 + 4;
const SEGMENT_BYTES: u64 = 64 * 1024 * 1024;
/// The most a record's body holds before its payload: the id and three length-prefixed
/// strings (topic, content type, traceparent).
const MAX_HEAD: usize = 8 + 3 * (2 + u16::MAX as usize);
/// Read buffer of a segment during replay.
const READ_BUFFER: usize = 64 * 1024;
/// How much of a payload over the limit is kept: as much as its quarantine record stores.
pub const CUT_PREFIX_BYTES: usize = crate::pipeline::QUARANTINE_PAYLOAD_BYTES;

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

/// A message's payload: whole, or only its first bytes when it is over the size limit (the
/// rest was never copied, so a device cannot make the service hold it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payload {
    Whole(Vec<u8>),
    /// Over the limit: at most [`CUT_PREFIX_BYTES`] first bytes, and the full size.
    Cut {
        prefix: Vec<u8>,
        size: usize,
    },
}

impl Payload {
    /// Keeps the first bytes of `payload`, a payload over the limit, and its size.
    pub fn cut(payload: &[u8]) -> Self {
        Self::Cut {
            prefix: payload.iter().take(CUT_PREFIX_BYTES).copied().collect(),
            size: payload.len(),
        }
    }

    /// The bytes at hand: all of a whole payload, the first bytes of a cut one.
    pub fn bytes(&self) -> &[u8] {
        match self {
            Self::Whole(b) => b,
            Self::Cut { prefix, .. } => prefix,
        }
    }

    /// The size the payload was published with.
    pub fn size(&self) -> usize {
        match self {
            Self::Whole(b) => b.len(),
            Self::Cut { size, .. } => *size,
        }
    }
}

/// A spooled MQTT message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpoolRecord {
    pub id: u64,
    pub topic: String,
    pub content_type: Option<String>,
    pub traceparent: Option<String>,
    pub payload: Payload,
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
    /// Uncommitted ids found at start-up with no record to replay (see [`Spool::missing`]).
    missing: Vec<(u64, u64)>,
    fsync_every: Option<Duration>,
    last_sync: Instant,
}

impl Spool {
    /// Opens (or creates) the spool and returns the records still to replay, in order, read
    /// from disk as the [`Replay`] is iterated. Payloads over `max_payload_bytes` are replayed
    /// cut ([`Payload::Cut`]).
    pub fn open(
        dir: &Path,
        fsync_ms: u64,
        max_payload_bytes: usize,
    ) -> Result<(Self, Replay), SpoolError> {
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

        // A first pass, keeping no record, finds the highest id (new ones must follow it), how
        // many records there are to replay, and the ids no record holds.
        let mut scan = Scan::new(committed);
        let mut empty = Vec::new();
        for (i, (_, path)) in segments.iter().enumerate() {
            let mut any = false;
            if let Some(mut reader) = SegmentReader::open(path, max_payload_bytes)? {
                while let Some(rec) = reader.next_record()? {
                    scan.saw(rec.id);
                    any = true;
                }
            }
            if !any {
                empty.push(i);
            }
        }
        // A segment without a readable record holds nothing to replay (most often the fresh
        // segment of a run that received nothing). Left in place, its name could be taken
        // again by a new segment, and two entries for one file would delete it while in use.
        for i in empty.into_iter().rev() {
            let (_, path) = segments.remove(i);
            fs::remove_file(&path).map_err(io_err(&path))?;
        }
        let mut next_id = scan.max_id + 1;
        // An older version named the segment it rolled to for a record that did not fit the
        // one before after the id following that record's, which may be the next id now: new
        // records need a file of their own, and the id skipped never waits to be committed.
        while segments.iter().any(|(first, _)| *first == next_id) {
            scan.missing.push((next_id, next_id));
            next_id += 1;
        }
        let replay = Replay {
            segments: segments.iter().map(|(_, p)| p.clone()).collect(),
            reader: None,
            committed,
            max_payload_bytes,
            records: scan.records,
        };
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
            missing: scan.missing,
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

    /// Takes an id for a message that is not written (one refused before spooling): it flows
    /// on and is committed like any other, and should the service die first, the next start
    /// finds no record for it and does not wait for it (see [`Spool::missing`]).
    pub fn reserve(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    fn write_record(
        &mut self,
        id: u64,
        topic: &str,
        content_type: Option<&str>,
        traceparent: Option<&str>,
        payload: &[u8],
    ) -> Result<(), SpoolError> {
        let rec = encode_record(id, topic, content_type, traceparent, payload)?;
        if self.current_size + rec.len() as u64 > SEGMENT_BYTES {
            self.roll_to(id)?;
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

    /// Moves on to a new segment for the ids from the next one on.
    fn roll(&mut self) -> Result<(), SpoolError> {
        self.roll_to(self.next_id)
    }

    /// Moves on to a new segment whose first record will have id `first`.
    fn roll_to(&mut self, first: u64) -> Result<(), SpoolError> {
        // The current segment has that name: it has no record yet, and is the same file.
        if self.segments.back().is_some_and(|(f, _)| *f == first) {
            return Ok(());
        }
        let path = self.dir.join(format!("seg-{first:020}.log"));
        self.current = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io_err(&path))?;
        self.current_path = path.clone();
        self.current_size = 0;
        self.segments.push_back((first, path));
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

    /// Uncommitted ids below the first new one that no spooled record holds, as inclusive
    /// ranges: ids taken by failed appends or by messages refused before spooling, or records
    /// lost to corruption. Nothing will ever commit them, so the commit watermark must not
    /// wait for them.
    pub fn missing(&self) -> &[(u64, u64)] {
        &self.missing
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

/// A record as written: magic, body length, CRC of the body, body.
fn encode_record(
    id: u64,
    topic: &str,
    content_type: Option<&str>,
    traceparent: Option<&str>,
    payload: &[u8],
) -> Result<Vec<u8>, SpoolError> {
    let mut b = Vec::with_capacity(HEADER + 8 + 6 + topic.len() + payload.len() + 64);
    b.push(MAGIC);
    // Length and CRC are filled in once the body is complete.
    b.extend_from_slice(&[0; 8]);
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
    let body = &b[HEADER..];
    let len = u32::try_from(body.len()).map_err(|_| SpoolError::TooLarge(body.len()))?;
    let crc = crc32fast::hash(body);
    b[1..5].copy_from_slice(&len.to_le_bytes());
    b[5..9].copy_from_slice(&crc.to_le_bytes());
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

/// A record's fields before its payload.
struct Head {
    id: u64,
    topic: String,
    content_type: Option<String>,
    traceparent: Option<String>,
    /// Bytes of the body they take.
    len: usize,
}

fn decode_head(body: &[u8]) -> Option<Head> {
    let mut c = Cursor(body);
    let id = u64::from_le_bytes(c.take(8)?.try_into().ok()?);
    let topic = c.string()??;
    let content_type = c.string()?;
    let traceparent = c.string()?;
    Some(Head {
        id,
        topic,
        content_type,
        traceparent,
        len: body.len() - c.0.len(),
    })
}

/// Feeds what is written into a CRC, for the part of a record that is checked, not kept.
struct CrcSink<'a>(&'a mut crc32fast::Hasher);

impl Write for CrcSink<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Fills `buf`; `false` when the input ends first (a torn record).
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<bool> {
    match r.read_exact(buf) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(false),
        Err(e) => Err(e),
    }
}

/// Reads the next record; `None` at the end of the input or at a torn or corrupt record.
/// Holds at most the head and `max_payload` bytes of payload in memory, whatever the record's
/// length says.
fn read_record(r: &mut impl Read, max_payload: usize) -> io::Result<Option<SpoolRecord>> {
    let mut header = [0u8; HEADER];
    if !read_full(r, &mut header)? || header[0] != MAGIC {
        return Ok(None);
    }
    let len = u32::from_le_bytes([header[1], header[2], header[3], header[4]]) as usize;
    let crc = u32::from_le_bytes([header[5], header[6], header[7], header[8]]);
    let kept = len.min(MAX_HEAD.saturating_add(max_payload));
    let mut body = vec![0u8; kept];
    if !read_full(r, &mut body)? {
        return Ok(None);
    }
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&body);
    let rest = (len - kept) as u64;
    if io::copy(&mut r.take(rest), &mut CrcSink(&mut hasher))? < rest || hasher.finalize() != crc {
        return Ok(None);
    }
    let Some(head) = decode_head(&body) else {
        return Ok(None);
    };
    let size = len - head.len;
    body.drain(..head.len);
    let payload = if size > max_payload {
        body.truncate(CUT_PREFIX_BYTES);
        Payload::Cut { prefix: body, size }
    } else {
        Payload::Whole(body)
    };
    Ok(Some(SpoolRecord {
        id: head.id,
        topic: head.topic,
        content_type: head.content_type,
        traceparent: head.traceparent,
        payload,
    }))
}

/// One segment, read record by record up to its first torn or corrupt record.
struct SegmentReader {
    path: PathBuf,
    file: BufReader<File>,
    max_payload: usize,
    ended: bool,
}

impl std::fmt::Debug for SegmentReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SegmentReader")
            .field("path", &self.path)
            .field("ended", &self.ended)
            .finish()
    }
}

impl SegmentReader {
    /// `None` when the segment is gone: replay runs alongside the writers, which delete a
    /// segment once everything in it is committed.
    fn open(path: &Path, max_payload: usize) -> Result<Option<Self>, SpoolError> {
        match File::open(path) {
            Ok(f) => Ok(Some(Self {
                path: path.to_owned(),
                file: BufReader::with_capacity(READ_BUFFER, f),
                max_payload,
                ended: false,
            })),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err(path)(e)),
        }
    }

    fn next_record(&mut self) -> Result<Option<SpoolRecord>, SpoolError> {
        if self.ended {
            return Ok(None);
        }
        let rec = read_record(&mut self.file, self.max_payload).map_err(io_err(&self.path))?;
        self.ended = rec.is_none();
        Ok(rec)
    }
}

/// What the opening pass over the segments learns.
struct Scan {
    committed: u64,
    max_id: u64,
    /// The id the next record to replay should have if none is missing.
    expected: u64,
    records: u64,
    missing: Vec<(u64, u64)>,
}

impl Scan {
    fn new(committed: u64) -> Self {
        Self {
            committed,
            max_id: committed,
            expected: committed.saturating_add(1),
            records: 0,
            missing: Vec::new(),
        }
    }

    /// Ids arrive in the order they were written, which is increasing.
    fn saw(&mut self, id: u64) {
        self.max_id = self.max_id.max(id);
        if id <= self.committed {
            return;
        }
        self.records += 1;
        if id > self.expected {
            self.missing.push((self.expected, id - 1));
        }
        self.expected = self.expected.max(id.saturating_add(1));
    }
}

/// The records to replay, oldest first, each read from disk when the iterator reaches it.
#[derive(Debug)]
pub struct Replay {
    segments: VecDeque<PathBuf>,
    reader: Option<SegmentReader>,
    committed: u64,
    max_payload_bytes: usize,
    records: u64,
}

impl Replay {
    /// How many records there are to replay, as counted when the spool was opened.
    pub fn records(&self) -> u64 {
        self.records
    }
}

impl Iterator for Replay {
    type Item = Result<SpoolRecord, SpoolError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let Some(reader) = self.reader.as_mut() else {
                let path = self.segments.pop_front()?;
                match SegmentReader::open(&path, self.max_payload_bytes) {
                    Ok(r) => self.reader = r,
                    Err(e) => return Some(Err(e)),
                }
                continue;
            };
            match reader.next_record() {
                Ok(Some(rec)) if rec.id <= self.committed => {}
                Ok(Some(rec)) => {
                    if let Payload::Cut { size, .. } = &rec.payload {
                        tracing::warn!(
                            id = rec.id,
                            topic = %rec.topic,
                            bytes = size,
                            limit = self.max_payload_bytes,
                            "a spooled message is over the payload limit: replayed without its \
                             payload, to be quarantined"
                        );
                    }
                    return Some(Ok(rec));
                }
                Ok(None) => self.reader = None,
                Err(e) => {
                    // An unreadable spool stops the replay; the caller decides what follows.
                    self.reader = None;
                    self.segments.clear();
                    return Some(Err(e));
                }
            }
        }
    }
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

    const LIMIT: usize = 64 * 1024;

    /// Opens the spool and reads the whole replay.
    /// Segment files in the spool directory.
    fn segment_count(dir: &Path) -> usize {
        fs::read_dir(dir)
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .starts_with("seg-")
            })
            .count()
    }

    fn reopen(dir: &Path, limit: usize) -> (Spool, Vec<SpoolRecord>) {
        let (s, replay) = Spool::open(dir, 0, limit).unwrap();
        let records = replay.collect::<Result<Vec<_>, _>>().unwrap();
        (s, records)
    }

    fn ids(records: &[SpoolRecord]) -> Vec<u64> {
        records.iter().map(|r| r.id).collect()
    }

    #[test]
    fn uncommitted_records_are_replayed_after_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let (mut s, replay) = reopen(dir.path(), LIMIT);
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
        let (s, replay) = reopen(dir.path(), LIMIT);
        assert_eq!(ids(&replay), (5..=10).collect::<Vec<_>>());
        assert_eq!(replay[0].payload, Payload::Whole(vec![4]));
        assert_eq!(replay[0].content_type.as_deref(), Some("application/json"));
        assert_eq!(replay[0].traceparent, None);
        assert_eq!(s.pending(), 6);
        assert!(s.missing().is_empty());
    }

    #[test]
    fn a_torn_tail_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let (mut s, _) = reopen(dir.path(), LIMIT);
        s.append("t", None, Some("00-abc-def-01"), b"ok").1.unwrap();
        let path = s.current_path.clone();
        drop(s);
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(&[MAGIC, 200, 0, 0, 0, 1, 2]).unwrap();
        let (_, replay) = reopen(dir.path(), LIMIT);
        assert_eq!(replay.len(), 1);
        assert_eq!(replay[0].traceparent.as_deref(), Some("00-abc-def-01"));
    }

    #[test]
    fn committed_segments_are_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let (mut s, _) = reopen(dir.path(), LIMIT);
        s.append("t", None, None, b"a").1.unwrap();
        s.roll().unwrap();
        s.append("t", None, None, b"b").1.unwrap();
        s.commit_through(2).unwrap();
        let segs = segment_count(dir.path());
        assert_eq!(segs, 1);
        drop(s);
        let (_, replay) = reopen(dir.path(), LIMIT);
        assert!(replay.is_empty());
    }

    #[test]
    fn a_record_over_the_limit_is_replayed_cut_to_its_first_bytes() {
        // What a version that spooled before checking the size may have left behind.
        let dir = tempfile::tempdir().unwrap();
        let (mut s, _) = reopen(dir.path(), LIMIT);
        let big: Vec<u8> = (0..4 * 1024 * 1024).map(|i| (i % 251) as u8).collect();
        s.append("t", Some("application/json"), None, &big)
            .1
            .unwrap();
        s.append("t", None, None, b"after").1.unwrap();
        drop(s);
        let (mut s, replay) = reopen(dir.path(), LIMIT);
        assert_eq!(ids(&replay), [1, 2]);
        assert_eq!(replay[0].payload, Payload::cut(&big));
        assert_eq!(replay[0].payload.bytes().len(), CUT_PREFIX_BYTES);
        assert_eq!(replay[0].payload.size(), big.len());
        assert_eq!(replay[0].content_type.as_deref(), Some("application/json"));
        assert_eq!(replay[1].payload, Payload::Whole(b"after".to_vec()));
        assert_eq!(s.append("t", None, None, b"new").0, 3);
    }

    #[test]
    fn ids_taken_without_a_record_are_reported_missing_after_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let (mut s, _) = reopen(dir.path(), LIMIT);
        assert_eq!(s.append("t", None, None, b"1").0, 1);
        assert_eq!(s.reserve(), 2);
        assert_eq!(s.reserve(), 3);
        assert_eq!(s.append("t", None, None, b"4").0, 4);
        assert_eq!(s.reserve(), 5);
        assert_eq!(s.append("t", None, None, b"6").0, 6);
        drop(s);
        let (s, replay) = reopen(dir.path(), LIMIT);
        assert_eq!(ids(&replay), [1, 4, 6]);
        assert_eq!(s.missing(), [(2, 3), (5, 5)]);
    }

    #[test]
    fn a_segment_deleted_while_replaying_is_skipped() {
        // Writers commit replayed records while the replay goes on, and delete what is done.
        let dir = tempfile::tempdir().unwrap();
        let (mut s, _) = reopen(dir.path(), LIMIT);
        for (i, p) in [b"1", b"2", b"3", b"4"].iter().enumerate() {
            if i == 2 {
                s.roll().unwrap();
            }
            s.append("t", None, None, *p).1.unwrap();
        }
        drop(s);
        let (mut s, mut replay) = Spool::open(dir.path(), 0, LIMIT).unwrap();
        assert_eq!(replay.records(), 4);
        assert_eq!(replay.next().unwrap().unwrap().id, 1);
        s.commit_through(4).unwrap();
        let rest: Vec<u64> = replay.map(|r| r.unwrap().id).collect();
        // The open segment is still read to its end; the deleted one is not an error.
        assert_eq!(rest, [2]);
    }

    #[test]
    fn a_segment_named_after_the_next_id_is_not_appended_to() {
        // An older version rolled to `seg-2` for record 1 when it did not fit the segment
        // before, and died.
        let dir = tempfile::tempdir().unwrap();
        let rec = encode_record(1, "t", None, None, b"big").unwrap();
        fs::write(dir.path().join(format!("seg-{:020}.log", 2)), rec).unwrap();
        let (mut s, replay) = reopen(dir.path(), LIMIT);
        assert_eq!(ids(&replay), [1]);
        assert_eq!(s.missing(), [(2, 2)]);
        assert_eq!(s.append("t", None, None, b"new").0, 3);
        assert_eq!(
            s.current_path,
            dir.path().join(format!("seg-{:020}.log", 3))
        );
        // Committing everything deletes the old file, never the one being written.
        s.commit_through(1).unwrap();
        s.commit_through(3).unwrap();
        s.append("t", None, None, b"newer").1.unwrap();
        drop(s);
        let (_, replay) = reopen(dir.path(), LIMIT);
        assert_eq!(ids(&replay), [4]);
    }

    #[test]
    fn segments_without_a_record_are_removed_at_start() {
        let dir = tempfile::tempdir().unwrap();
        let segment_files = || segment_count(dir.path());
        // Starts that receive nothing leave no trail of empty segments...
        for _ in 0..3 {
            reopen(dir.path(), LIMIT);
        }
        assert_eq!(segment_files(), 1);
        // ...and one holding only a torn record goes too.
        let (mut s, _) = reopen(dir.path(), LIMIT);
        s.append("t", None, None, b"kept").1.unwrap();
        s.roll().unwrap();
        let torn = s.current_path.clone();
        drop(s);
        fs::write(&torn, [MAGIC, 200, 0, 0, 0, 1, 2]).unwrap();
        let (mut s, replay) = reopen(dir.path(), LIMIT);
        assert_eq!(ids(&replay), [1]);
        // The name is free again, for the new segment, which starts empty.
        assert_eq!(s.current_path, torn);
        assert_eq!(fs::metadata(&torn).unwrap().len(), 0);
        assert_eq!(s.append("t", None, None, b"next").0, 2);
        assert_eq!(segment_files(), 2);
        drop(s);
        let (_, replay) = reopen(dir.path(), LIMIT);
        assert_eq!(ids(&replay), [1, 2]);
    }

    #[derive(Debug, Clone)]
    enum Op {
        Append(Vec<u8>),
        Reserve,
        Roll,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            6 => proptest::collection::vec(any::<u8>(), 0..60).prop_map(Op::Append),
            // Over the 100-byte limit the property uses...
            1 => proptest::collection::vec(any::<u8>(), 101..400).prop_map(Op::Append),
            // ...and longer than what replay reads of a record, the rest only streamed by.
            1 => (MAX_HEAD..MAX_HEAD + 10_000, any::<u8>()).prop_map(|(n, b)| Op::Append(vec![b; n])),
            1 => Just(Op::Reserve),
            1 => Just(Op::Roll),
        ]
    }

    proptest! {
        #[test]
        fn records_roundtrip(topic in "\\PC{0,40}", ct in proptest::option::of("\\PC{0,20}"),
                             tp in proptest::option::of("[0-9a-f-]{0,55}"),
                             payload in proptest::collection::vec(any::<u8>(), 0..300)) {
            let bytes = encode_record(7, &topic, ct.as_deref(), tp.as_deref(), &payload).unwrap();
            let rec = read_record(&mut bytes.as_slice(), LIMIT).unwrap().unwrap();
            prop_assert_eq!(rec, SpoolRecord {
                id: 7, topic, content_type: ct, traceparent: tp, payload: Payload::Whole(payload),
            });
        }

        #[test]
        fn reading_garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200),
                                        limit in 0usize..100) {
            let mut input = bytes.as_slice();
            while let Ok(Some(_)) = read_record(&mut input, limit) {}
        }

        /// Whatever was appended, reserved and committed before a restart, the replay yields
        /// exactly the uncommitted records, in order, those over the limit cut; the ids with no
        /// record are reported missing; and new ids follow every old one.
        #[test]
        fn the_streamed_replay_is_exactly_what_is_uncommitted(
            ops in proptest::collection::vec(op(), 0..40),
            commit_at in 0usize..40,
        ) {
            const SMALL_LIMIT: usize = 100;
            let dir = tempfile::tempdir().unwrap();
            let (mut s, _) = reopen(dir.path(), SMALL_LIMIT);
            let mut written = Vec::new();
            let mut reserved = Vec::new();
            for op in &ops {
                match op {
                    Op::Append(p) => written.push((s.append("t", None, None, p).0, p.clone())),
                    Op::Reserve => reserved.push(s.reserve()),
                    Op::Roll => s.roll().unwrap(),
                }
            }
            let taken = (written.len() + reserved.len()) as u64;
            let committed = (commit_at as u64).min(taken);
            s.commit_through(committed).unwrap();
            drop(s);

            let (mut s, replay) = reopen(dir.path(), SMALL_LIMIT);
            let expected: Vec<SpoolRecord> = written
                .iter()
                .filter(|(id, _)| *id > committed)
                .map(|(id, p)| SpoolRecord {
                    id: *id,
                    topic: "t".into(),
                    content_type: None,
                    traceparent: None,
                    payload: if p.len() > SMALL_LIMIT { Payload::cut(p) } else { Payload::Whole(p.clone()) },
                })
                .collect();
            prop_assert_eq!(&replay, &expected);

            let last_written = written.iter().map(|(id, _)| *id).max().unwrap_or(0);
            let missing: Vec<u64> = s.missing().iter().flat_map(|&(lo, hi)| lo..=hi).collect();
            let never_written: Vec<u64> = reserved
                .iter()
                .copied()
                .filter(|id| *id > committed && *id < last_written)
                .collect();
            prop_assert_eq!(missing, never_written);
            let next = s.append("t", None, None, b"x").0;
            prop_assert_eq!(next, committed.max(last_written) + 1);
        }
    }
}
