//! Readiness probes: the building blocks that tell when an instance is ready.
//!
//! Each probe answers one question and decides nothing; polling, deadlines and
//! the `starting -> ready` transition are the supervisor's.
//!
//! - [`port`]: is a socket listening on the instance's `$PORT`? Read from the
//!   kernel's socket tables, so the app sees no probe traffic.
//! - [`http`]: does `GET http://127.0.0.1:$PORT/PATH` answer 2xx or 3xx?
//! - [`notify`]: systemd's `sd_notify` protocol. ganger owns a datagram socket
//!   whose path goes into the instance's `NOTIFY_SOCKET`; each message comes
//!   with the sender's pid as the kernel saw it.
//! - [`tree`]: is that pid the instance's process or one of its descendants?
//!   Messages from any other process are to be ignored.

pub mod http;
pub mod notify;
pub mod port;
pub mod tree;

pub use http::get_ok;
pub use notify::{Message, NotifySocket};
pub use port::listening;
pub use tree::in_tree;
