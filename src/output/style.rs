//! How one line looks: the `HH:MM:SS name.n | ` prefix with its color, or a
//! JSON object, built once per second (text) or per chunk (JSON) and copied in
//! front of every line.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::SystemTime;

use anstyle::AnsiColor;

use super::json::push_json_str;

/// foreman's colors by Procfile position: cyan, yellow, green, magenta, red,
/// blue, then the bright variants.
const COLORS: [AnsiColor; 12] = [
    AnsiColor::Cyan,
    AnsiColor::Yellow,
    AnsiColor::Green,
    AnsiColor::Magenta,
    AnsiColor::Red,
    AnsiColor::Blue,
    AnsiColor::BrightCyan,
    AnsiColor::BrightYellow,
    AnsiColor::BrightGreen,
    AnsiColor::BrightMagenta,
    AnsiColor::BrightRed,
    AnsiColor::BrightBlue,
];

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

/// When to color the output (`--color`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

/// How each line is written (`--log-format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
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
    color: Option<anstyle::Style>,
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
            color: position.map(|p| COLORS[p % COLORS.len()].on_default()),
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
        let color = self.color.filter(|_| self.style.color);
        if let Some(color) = color {
            // Writing into a Vec cannot fail.
            let _ = color.write_to(&mut self.prefix);
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
        if let Some(color) = color {
            let _ = color.write_reset_to(&mut self.prefix);
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
    fn colors_are_foremans_sgr_codes() {
        let codes = [
            "36", "33", "32", "35", "31", "34", "96", "93", "92", "95", "91", "94",
        ];
        for position in 0..codes.len() * 2 {
            let mut f = LineFormat::new(style(false, true), "w", Some(position), Stream::Stdout);
            f.refresh();
            let mut out = Vec::new();
            f.push(&mut out, b"x");
            let code = codes[position % codes.len()];
            assert_eq!(out, format!("\x1b[{code}mw      |\x1b[0m x\n").into_bytes());
        }
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
}
