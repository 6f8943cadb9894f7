//! The merged output stream: how a line looks, and the one thread that writes
//! ganger's stdout.
//!
//! Relays and the supervisor format whole lines into byte chunks and hand them to
//! a [`Sink`]; a single writer thread owns fd 1, so a slow or stuck terminal never
//! blocks the supervisor, and a failed stdout becomes an event instead of a panic.
//! Everything in flight (read buffers, formatted chunks, ganger's own lines) is
//! drawn from one bounded budget, so a stdout nobody reads slows the relays down
//! instead of growing memory. Bytes stay bytes: nothing here requires UTF-8
//! except JSON, which replaces invalid sequences.

mod budget;
mod json;
mod style;
mod writer;

pub use budget::ReadBuffer;
pub use style::{ColorChoice, LineFormat, LogFormat, Stream, Style, color_enabled};
pub use writer::{Sink, WriteFailed, Writer, failure_status, start_writer};
