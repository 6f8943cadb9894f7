//! The `port` probe: is anything listening on a local TCP port?
//!
//! The answer comes from the kernel's socket tables (`/proc/net/tcp` and
//! `/proc/net/tcp6`), not from connecting, so the app never sees probe traffic
//! (no stray connections in its access log, no half-open accepts). The tables
//! show the sockets of ganger's own network namespace, which is the one its
//! instances share. Any local address counts: an app bound to `127.0.0.1`, `::1`,
//! `0.0.0.0` or `::` is equally ready.
//!
//! This module only reads; it never connects, binds or blocks for long.

use std::fs::File;
use std::io::{BufRead, BufReader};

/// The socket tables read, IPv4 first (most apps bind there or to `::`).
const TABLES: [&str; 2] = ["/proc/net/tcp", "/proc/net/tcp6"];

/// `TCP_LISTEN` as the tables write it (the `st` column, in hex).
const LISTEN: &str = "0A";

/// Whether any socket of ganger's network namespace is listening on `port`.
///
/// A table that cannot be read (no IPv6, no `/proc`) counts as having no
/// listener; if neither can be read, the answer is `false`.
#[must_use]
pub fn listening(port: u16) -> bool {
    TABLES.iter().any(|path| table_lists(path, port))
}

/// Reads one table line by line: on a busy host it can hold many thousands of
/// connections, and the kernel lists listening sockets first, so stopping at
/// the first match usually reads only a few lines.
fn table_lists(path: &str, port: u16) -> bool {
    let Ok(file) = File::open(path) else {
        return false;
    };
    let mut reader = BufReader::new(file);
    let mut line = String::new();
    loop {
        line.clear();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => return false,
            Ok(_) if line_listens(&line, port) => return true,
            Ok(_) => {}
        }
    }
}

/// Whether a table's text (header included) lists a socket listening on `port`.
#[cfg(test)]
fn listening_in(table: &str, port: u16) -> bool {
    table.lines().any(|line| line_listens(line, port))
}

/// Whether one line of a table is a listening socket on `port`.
///
/// A line reads `sl local rem st ...`, e.g.
/// `0: 0100007F:1F90 00000000:0000 0A ...`, where `local` is `HEXIP:HEXPORT`
/// (32 hex digits of IP in `tcp6`). The header and anything malformed simply
/// do not match.
fn line_listens(line: &str, port: u16) -> bool {
    let mut fields = line.split_ascii_whitespace();
    let (Some(slot), Some(local), Some(_remote), Some(state)) =
        (fields.next(), fields.next(), fields.next(), fields.next())
    else {
        return false;
    };
    if !slot.ends_with(':') || !state.eq_ignore_ascii_case(LISTEN) {
        return false;
    }
    let Some((ip, hex_port)) = local.rsplit_once(':') else {
        return false;
    };
    let hex_ok = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit());
    // from_str_radix alone would accept a leading `+`.
    hex_ok(ip) && hex_ok(hex_port) && u16::from_str_radix(hex_port, 16).ok() == Some(port)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 4242 1 0000000000000000 100 0 0 10 0
   1: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1284 1 0000000000000000 100 0 0 10 0
   2: 0100007F:1F90 0100007F:D431 01 00000000:00000000 00:00000000 00000000  1000        0 4243 1 0000000000000000 20 4 30 10 -1
   3: 0100007F:C350 0100007F:1F91 01 00000000:00000000 00:00000000 00000000  1000        0 4244 1 0000000000000000 20 4 30 10 -1
   4: 0100007F:1389 0100007F:9C40 06 00000000:00000000 03:00000F4C 00000000     0        0 0 3 0000000000000000
";

    const TCP6: &str = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000000000000:1F40 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 5151 1 0000000000000000 100 0 0 10 0
   1: 00000000000000000000000001000000:0BB8 00000000000000000000000000000000:0000 0a 00000000:00000000 00:00000000 00000000  1000        0 5152 1 0000000000000000 100 0 0 10 0
";

    #[test]
    fn listening_sockets_on_any_address_count() {
        assert!(listening_in(TCP, 8080)); // 127.0.0.1:8080
        assert!(listening_in(TCP, 22)); // 0.0.0.0:22
        assert!(listening_in(TCP6, 8000)); // [::]:8000
        assert!(listening_in(TCP6, 3000)); // [::1]:3000, lowercase state
    }

    #[test]
    fn other_states_and_remote_ports_do_not_count() {
        // 50000 is only a local port of an established connection, 8081 only
        // a remote port, 5001 a TIME_WAIT socket.
        assert!(!listening_in(TCP, 50000));
        assert!(!listening_in(TCP, 8081));
        assert!(!listening_in(TCP, 5001));
        assert!(!listening_in(TCP, 54321));
        assert!(!listening_in(TCP6, 8080));
    }

    #[test]
    fn empty_and_malformed_tables_list_nothing() {
        for table in [
            "",
            "\n\n",
            "  sl  local_address rem_address   st\n",
            "0: 0100007F:1F90 00000000:0000\n",
            "0: 0100007F1F90 00000000:0000 0A\n",
            "0: 0100007F: 00000000:0000 0A\n",
            "0: :1F90 00000000:0000 0A\n",
            "0: 0100007F:+1F90 00000000:0000 0A\n",
            "0: 0100007F:11F90 00000000:0000 0A\n",
            "0: 01G0007F:1F90 00000000:0000 0A\n",
            "0 0100007F:1F90 00000000:0000 0A\n",
            "0: 0100007F:1F90 00000000:0000 0A0\n",
            "0: 0100007F:1F90 00000000:0000 \u{e9}A\n",
        ] {
            assert!(!listening_in(table, 8080), "{table:?}");
        }
    }

    #[test]
    fn port_zero_is_only_matched_by_a_listener_on_zero() {
        assert!(!listening_in(TCP, 0));
    }

    #[test]
    fn a_live_listener_is_seen() {
        // (That a closed one is not seen is left to the parsed tables above:
        // after a drop, any other process may listen on the same port.)
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("local address").port();
        assert!(listening(port));
    }

    #[test]
    fn a_bound_but_not_listening_socket_is_not_seen() {
        // A UDP socket on the same port number is not a TCP listener.
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
        let port = socket.local_addr().expect("local address").port();
        assert!(!listening(port));
    }
}
