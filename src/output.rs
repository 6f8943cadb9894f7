//! The merged output stream: how a line looks, and the one thread that writes
//! ganger's stdout.
//!
//! Relays and the supervisor format whole lines into byte chunks and hand them to
//! [`Sink`]; a single writer thread owns fd 1, so a slow or stuck terminal never
//! blocks the supervisor, and a broken pipe becomes an event instead of a panic.
//! Bytes stay bytes: nothing here requires UTF-8 except JSON, which replaces
//! invalid sequences.

use std::fs::File;
use std::io::{self, IoSlice, Write};
use std::mem::ManuallyDrop;
use std::os::fd::FromRawFd;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

use crate::cli::{ColorChoice, LogFormat, OutputArgs};

/// foreman's colors by Procfile position: cyan, yellow, green, magenta, red,
/// blue, then the bright variants.
const COLORS: [&str; 12] = [
    "36", "33", "32", "35", "31", "34", "96", "93", "92", "95", "91", "94",
];

/// Kibibytes of output that relays may have queued for the writer before they
/// wait (backpressure: a slow stdout slows the readers, never grows memory).
const BUDGET_KIB: usize = 2 * 1024;

/// Buffer size asked for when stdout is a pipe.
const STDOUT_PIPE_SIZE: i32 = 1024 * 1024;

/// Written buffers kept for reuse: relays take them instead of allocating (and
/// page-faulting in) a fresh one per chunk.
const POOL_BUFFERS: usize = 8;
/// A buffer larger than this is freed rather than kept.
const POOL_MAX_CAPACITY: usize = 1024 * 1024;

/// Which of a child's streams a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
    /// ganger's own lines.
    System,
}

impl Stream {
    fn json_name(self) -> &'static str {
        match self {
            Stream::Stderr => "stderr",
            Stream::Stdout | Stream::System => "stdout",
        }
    }
}

/// The look of the stream, fixed for a run but for the name column, which
/// widens when `scale` adds a longer name (`web.10`).
#[derive(Debug)]
pub struct Style {
    pub timestamp: bool,
    pub color: bool,
    pub json: bool,
    /// Width of the name column: the longest instance name, `system` included.
    width: AtomicUsize,
}

impl Style {
    /// The style the flags ask for; `width` covers every name that can appear.
    #[must_use]
    pub fn new(args: &OutputArgs, width: usize) -> Self {
        Style::with(
            !args.no_timestamp,
            color_enabled(args.color),
            args.log_format == LogFormat::Json,
            width.max("system".len()),
        )
    }

    /// A style with these settings and name column width.
    #[must_use]
    pub fn with(timestamp: bool, color: bool, json: bool, width: usize) -> Self {
        Style {
            timestamp,
            color,
            json,
            width: AtomicUsize::new(width),
        }
    }

    /// The name column's width now.
    #[must_use]
    pub fn width(&self) -> usize {
        self.width.load(Ordering::Relaxed)
    }

    /// Widens the name column to fit `name`; every prefix follows at its next refresh.
    pub fn fit(&self, name: &str) {
        self.width.fetch_max(name.len(), Ordering::Relaxed);
    }
}

/// `--color auto|always|never`: auto colors only a terminal with `NO_COLOR`
/// unset; `FORCE_COLOR` (anything but empty, `0` or `false`) forces color on.
#[must_use]
pub fn color_enabled(choice: ColorChoice) -> bool {
    use std::io::IsTerminal;
    match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => {
            let set = |name| std::env::var_os(name).is_some_and(|v| !v.is_empty());
            let forced = std::env::var("FORCE_COLOR")
                .is_ok_and(|v| !v.is_empty() && v != "0" && !v.eq_ignore_ascii_case("false"));
            forced || (!set("NO_COLOR") && io::stdout().is_terminal())
        }
    }
}

/// Formats lines for one name and stream, caching the prefix so that the clock
/// is formatted at most once per second (text) and once per chunk (JSON).
#[derive(Debug, Clone)]
pub struct LineFormat {
    style: Arc<Style>,
    name: String,
    color: Option<&'static str>,
    stream: Stream,
    prefix: Vec<u8>,
    /// The second and column width the text prefix was built for (`i64::MIN`: never).
    prefix_second: i64,
    prefix_width: usize,
    /// Lines come from a pty: clean them as a terminal would show them.
    tty: bool,
}

impl LineFormat {
    /// A format for `name` (e.g. `web.1`); `position` picks the color, `None`
    /// for ganger's own plain lines.
    #[must_use]
    pub fn new(style: Arc<Style>, name: &str, position: Option<usize>, stream: Stream) -> Self {
        LineFormat {
            color: position.map(|p| COLORS[p % COLORS.len()]),
            style,
            name: name.to_string(),
            stream,
            prefix: Vec::with_capacity(64),
            prefix_second: i64::MIN,
            prefix_width: 0,
            tty: false,
        }
    }

    /// For lines read from a pty: `\r\n` ends a line, a carriage-return redraw
    /// keeps what a terminal would show, and without color the child's escape
    /// sequences go too.
    #[must_use]
    pub fn for_tty(mut self) -> Self {
        self.tty = true;
        self
    }

    /// Brings the prefix up to date with the clock; call once per chunk.
    pub fn refresh(&mut self) {
        let clock = SystemTime::now();
        if self.style.json {
            self.prefix.clear();
            let ts = chrono::DateTime::<chrono::Utc>::from(clock)
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
            self.prefix.extend_from_slice(b"{\"ts\":\"");
            self.prefix.extend_from_slice(ts.as_bytes());
            self.prefix.extend_from_slice(b"\",\"process\":");
            let name = if self.stream == Stream::System {
                "system"
            } else {
                &self.name
            };
            push_json_str(&mut self.prefix, name.as_bytes());
            self.prefix.extend_from_slice(b",\"stream\":\"");
            self.prefix
                .extend_from_slice(self.stream.json_name().as_bytes());
            self.prefix.extend_from_slice(b"\",\"line\":");
            return;
        }
        let since_epoch = clock
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default();
        let second = i64::try_from(since_epoch.as_secs()).unwrap_or(i64::MAX);
        let width = self.style.width();
        if second == self.prefix_second && width == self.prefix_width {
            return;
        }
        self.prefix_second = second;
        self.prefix_width = width;
        self.prefix.clear();
        if let (Some(code), true) = (self.color, self.style.color) {
            self.prefix.extend_from_slice(b"\x1b[");
            self.prefix.extend_from_slice(code.as_bytes());
            self.prefix.push(b'm');
        }
        if self.style.timestamp {
            let local = chrono::Local::now().format("%H:%M:%S ").to_string();
            self.prefix.extend_from_slice(local.as_bytes());
        }
        self.prefix.extend_from_slice(self.name.as_bytes());
        for _ in self.name.len()..width {
            self.prefix.push(b' ');
        }
        self.prefix.extend_from_slice(b" |");
        if self.color.is_some() && self.style.color {
            self.prefix.extend_from_slice(b"\x1b[0m");
        }
        self.prefix.push(b' ');
    }

    /// Appends one formatted line (without its newline) to `out`.
    pub fn push(&self, out: &mut Vec<u8>, line: &[u8]) {
        if self.tty {
            let mut shown = Vec::with_capacity(line.len());
            crate::tty::clean_line(line, !self.style.color, &mut shown);
            self.push_clean(out, &shown);
        } else {
            self.push_clean(out, line);
        }
    }

    fn push_clean(&self, out: &mut Vec<u8>, line: &[u8]) {
        out.extend_from_slice(&self.prefix);
        if self.style.json {
            push_json_str(out, line);
            out.extend_from_slice(b"}\n");
        } else {
            out.extend_from_slice(line);
            out.push(b'\n');
        }
    }
}

/// Appends `bytes` as a JSON string; invalid UTF-8 becomes U+FFFD.
fn push_json_str(out: &mut Vec<u8>, bytes: &[u8]) {
    out.push(b'"');
    // Most log lines are printable ASCII: copy that prefix as it is, and only
    // validate and escape from the first byte that may need it.
    let plain = plain_ascii_prefix(bytes);
    out.extend_from_slice(&bytes[..plain]);
    let rest = &bytes[plain..];
    if !rest.is_empty() {
        match std::str::from_utf8(rest) {
            Ok(text) => push_json_escaped(out, text.as_bytes()),
            Err(_) => push_json_escaped(out, String::from_utf8_lossy(rest).as_bytes()),
        }
    }
    out.push(b'"');
}

/// Whether a byte goes into a JSON string as it is and is ASCII.
const fn is_plain(b: u8) -> bool {
    b >= 0x20 && b < 0x7f && b != b'"' && b != b'\\'
}

/// The length of the longest prefix of `bytes` that is printable ASCII with no
/// `"` or `\`, checked eight bytes at a time.
fn plain_ascii_prefix(bytes: &[u8]) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // Exact per-word tests (bit-twiddling "haszero" and "hasless"): a non-zero
    // result means the word holds a byte that is not plain.
    let special = |word: &[u8]| {
        let mut w = [0u8; 8];
        w.copy_from_slice(word);
        let w = u64::from_le_bytes(w);
        let has_zero = |v: u64| v.wrapping_sub(ONES) & !v & HIGH;
        (w.wrapping_sub(ONES * 0x20) & !w & HIGH)
            | has_zero(w ^ (ONES * u64::from(b'"')))
            | has_zero(w ^ (ONES * u64::from(b'\\')))
            | has_zero(w ^ (ONES * 0x7f))
            | (w & HIGH)
    };
    let mut i = 0;
    // Four words per test, so that the compiler can use vector registers.
    for block in bytes.chunks_exact(32) {
        if block.chunks_exact(8).fold(0, |acc, w| acc | special(w)) != 0 {
            break;
        }
        i += 32;
    }
    for word in bytes[i..].chunks_exact(8) {
        if special(word) != 0 {
            break;
        }
        i += 8;
    }
    while i < bytes.len() && is_plain(bytes[i]) {
        i += 1;
    }
    i
}

/// Copies valid UTF-8 into a JSON string body, escaping in runs rather than
/// byte by byte (the JSON relay is on the hot path).
fn push_json_escaped(out: &mut Vec<u8>, text: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut run = 0;
    for (i, &b) in text.iter().enumerate() {
        let escape: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0..0x20 | 0x7f => b"",
            _ => continue,
        };
        out.extend_from_slice(&text[run..i]);
        if escape.is_empty() {
            out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(b >> 4)],
                HEX[usize::from(b & 0xf)],
            ]);
        } else {
            out.extend_from_slice(escape);
        }
        run = i + 1;
    }
    out.extend_from_slice(&text[run..]);
}

/// A chunk of whole formatted lines, with the budget it holds.
struct Chunk {
    bytes: Vec<u8>,
    permits: u32,
}

/// Emptied buffers on their way back from the writer to the relays; locked
/// once per chunk and once per written batch, never per line.
type Pool = Arc<Mutex<Vec<Vec<u8>>>>;

/// Where formatted output goes; cheap to clone.
#[derive(Clone)]
pub struct Sink {
    tx: UnboundedSender<Chunk>,
    budget: Arc<Semaphore>,
    pool: Pool,
}

impl Sink {
    /// An empty buffer with room for at least `capacity` bytes, reused from
    /// output already written when there is one.
    #[must_use]
    pub fn buffer(&self, capacity: usize) -> Vec<u8> {
        let reused = self.pool.lock().ok().and_then(|mut pool| pool.pop());
        let mut buf = reused.unwrap_or_default();
        buf.reserve(capacity);
        buf
    }

    /// Queues relayed output, waiting while the writer is too far behind.
    pub async fn send(&self, bytes: Vec<u8>) {
        if bytes.is_empty() {
            return;
        }
        let permits = u32::try_from(bytes.len().div_ceil(1024).min(BUDGET_KIB)).unwrap_or(1);
        if let Ok(p) = self.budget.acquire_many(permits).await {
            p.forget();
        }
        let _ = self.tx.send(Chunk { bytes, permits });
    }

    /// Queues ganger's own lines at once (they are few; they never wait).
    pub fn send_now(&self, bytes: Vec<u8>) {
        let _ = self.tx.send(Chunk { bytes, permits: 0 });
    }
}

/// The writer thread's report that stdout failed (EPIPE, EIO...).
pub type WriteFailed = io::Error;

/// Starts the writer thread; it ends when every [`Sink`] is dropped. A write
/// error is reported once on `failed`, after which output is discarded so that
/// relays keep draining the children.
pub fn start_writer(failed: UnboundedSender<WriteFailed>) -> io::Result<(Sink, Writer)> {
    let (tx, rx) = unbounded_channel();
    let budget = Arc::new(Semaphore::new(BUDGET_KIB));
    let pool = Pool::default();
    let thread_budget = Arc::clone(&budget);
    let thread_pool = Arc::clone(&pool);
    let written = Arc::new(AtomicU64::new(0));
    let thread_written = Arc::clone(&written);
    let handle = std::thread::Builder::new()
        .name("ganger-stdout".into())
        .spawn(move || write_loop(rx, &thread_budget, &thread_pool, &failed, &thread_written))?;
    Ok((Sink { tx, budget, pool }, Writer { handle, written }))
}

/// The writer thread, for waiting on it at exit.
pub struct Writer {
    handle: std::thread::JoinHandle<()>,
    /// Bytes written so far: progress, as seen from outside.
    written: Arc<AtomicU64>,
}

impl Writer {
    /// Waits until everything queued is written (every [`Sink`] must be gone),
    /// for as long as the writes make progress. A stdout whose reader stopped
    /// reading for `stall` does not keep ganger from exiting.
    pub fn finish(self, stall: Duration) {
        let mut seen = self.written.load(Ordering::Relaxed);
        let mut since = Instant::now();
        while !self.handle.is_finished() {
            let now = self.written.load(Ordering::Relaxed);
            if now != seen {
                seen = now;
                since = Instant::now();
            } else if since.elapsed() >= stall {
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let _ = self.handle.join();
    }
}

fn write_loop(
    mut rx: UnboundedReceiver<Chunk>,
    budget: &Semaphore,
    pool: &Mutex<Vec<Vec<u8>>>,
    failed: &UnboundedSender<WriteFailed>,
    written: &AtomicU64,
) {
    // SAFETY: fd 1 stays open for the life of the process; ManuallyDrop keeps us
    // from closing it.
    let mut out = ManuallyDrop::new(unsafe { File::from_raw_fd(1) });
    enlarge_pipe(&out);
    let mut broken = false;
    let mut batch: Vec<Chunk> = Vec::with_capacity(64);
    while let Some(first) = rx.blocking_recv() {
        batch.push(first);
        let mut size = batch[0].bytes.len();
        while size < 256 * 1024 && batch.len() < 64 {
            match rx.try_recv() {
                Ok(chunk) => {
                    size += chunk.bytes.len();
                    batch.push(chunk);
                }
                Err(_) => break,
            }
        }
        if !broken && let Err(e) = write_all_vectored(&mut out, &batch, written) {
            broken = true;
            let _ = failed.send(e);
        }
        let permits: usize = batch.iter().map(|c| c.permits as usize).sum();
        budget.add_permits(permits);
        if let Ok(mut pool) = pool.lock() {
            for chunk in batch.drain(..) {
                if pool.len() < POOL_BUFFERS && chunk.bytes.capacity() <= POOL_MAX_CAPACITY {
                    let mut bytes = chunk.bytes;
                    bytes.clear();
                    pool.push(bytes);
                }
            }
        }
        batch.clear();
    }
}

/// When stdout is a pipe, asks for a larger buffer: fewer wakeups of the writer
/// and of the reader on the other end. Refusal (e.g. over the per-user limit)
/// leaves the pipe as it is.
fn enlarge_pipe(out: &File) {
    use nix::fcntl::{FcntlArg, fcntl};
    if let Ok(size) = fcntl(out, FcntlArg::F_GETPIPE_SZ)
        && size < STDOUT_PIPE_SIZE
    {
        let _ = fcntl(out, FcntlArg::F_SETPIPE_SZ(STDOUT_PIPE_SIZE));
    }
}

fn write_all_vectored(out: &mut File, batch: &[Chunk], written: &AtomicU64) -> io::Result<()> {
    let mut slices: Vec<IoSlice<'_>> = batch.iter().map(|c| IoSlice::new(&c.bytes)).collect();
    let mut slices = &mut slices[..];
    while !slices.is_empty() {
        match out.write_vectored(slices) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => {
                written.fetch_add(n as u64, Ordering::Relaxed);
                IoSlice::advance_slices(&mut slices, n);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn style(json: bool, color: bool) -> Arc<Style> {
        Arc::new(Style::with(false, color, json, 6))
    }

    #[test]
    fn text_lines_are_padded_to_the_widest_name() {
        let mut f = LineFormat::new(style(false, false), "web.1", Some(0), Stream::Stdout);
        f.refresh();
        let mut out = Vec::new();
        f.push(&mut out, b"hello \xff");
        assert_eq!(out, b"web.1  | hello \xff\n");
    }

    #[test]
    fn color_wraps_the_prefix_in_foreman_order() {
        let mut f = LineFormat::new(style(false, true), "w.1", Some(1), Stream::Stdout);
        f.refresh();
        let mut out = Vec::new();
        f.push(&mut out, b"x");
        assert_eq!(out, b"\x1b[33mw.1    |\x1b[0m x\n");
        let mut s = LineFormat::new(style(false, true), "system", None, Stream::System);
        s.refresh();
        out.clear();
        s.push(&mut out, b"y");
        assert_eq!(out, b"system | y\n");
    }

    #[test]
    fn json_is_valid_even_for_invalid_utf8_and_controls() {
        let mut f = LineFormat::new(style(true, true), "web.1", Some(0), Stream::Stderr);
        f.refresh();
        let mut out = Vec::new();
        f.push(&mut out, b"a\"b\\c\x01\xff\xfe\tend");
        let v: serde_json::Value = serde_json::from_slice(&out).expect("valid json");
        assert_eq!(v["process"], "web.1");
        assert_eq!(v["stream"], "stderr");
        assert_eq!(v["line"], "a\"b\\c\u{1}\u{fffd}\u{fffd}\tend");
        assert!(v["ts"].as_str().is_some_and(|t| t.ends_with('Z')));
    }

    proptest::proptest! {
        #[test]
        fn json_line_round_trips_any_bytes(
            line in proptest::collection::vec(proptest::prop_oneof![
                proptest::num::u8::ANY,
                proptest::sample::select(b" \"\\\x7f\x1fazAZ~".to_vec()),
            ], 0..40)
        ) {
            let mut out = Vec::new();
            push_json_str(&mut out, &line);
            let parsed: String = serde_json::from_slice(&out).expect("valid json");
            proptest::prop_assert_eq!(parsed, String::from_utf8_lossy(&line));
            proptest::prop_assert!(!out.contains(&0x7f) && out.iter().all(|&b| b >= 0x20));
        }
    }
}
