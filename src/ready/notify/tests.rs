//! The notify socket against real clients, and the parser against hostile datagrams.

use super::*;

use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixDatagram as Client;
use std::process::{Command, Stdio};
use std::time::Duration;

/// Generous: the suite runs on busy 2-core machines.
const PATIENCE: Duration = Duration::from_secs(30);

async fn next(socket: &NotifySocket) -> Message {
    tokio::time::timeout(PATIENCE, socket.recv())
        .await
        .expect("a datagram in time")
        .expect("recv")
}

fn own_pid() -> i32 {
    i32::try_from(std::process::id()).expect("pid")
}

#[test]
fn parses_the_assignments_it_knows() {
    let m = parse(b"READY=1\nSTATUS=warming up\nMAINPID=4\nX=y");
    assert_eq!(
        m,
        Message {
            pid: None,
            ready: true,
            status: Some("warming up".into()),
            stopping: false
        }
    );
    assert!(parse(b"STOPPING=1\n").stopping);
    assert_eq!(parse(b"STATUS=a\nSTATUS=b\n").status.as_deref(), Some("b"));
    assert_eq!(parse(b"STATUS=").status.as_deref(), Some(""));
}

#[test]
fn near_misses_and_garbage_say_nothing() {
    for datagram in [
        &b""[..],
        b"\n\n",
        b"READY=0",
        b"READY=1 ",
        b" READY=1",
        b"ready=1",
        b"READY=1\r",
        b"READY",
        b"STOPPING=yes",
        b"\xff\xfe\x00READY=1",
    ] {
        assert_eq!(parse(datagram), Message::default(), "{datagram:?}");
    }
}

#[test]
fn status_is_made_safe_to_print() {
    let m = parse(b"STATUS=\x1b[2Jcleared\tand\x07\xffok\x00");
    assert_eq!(m.status.as_deref(), Some(" [2Jcleared and \u{fffd}ok "));
}

#[test]
fn parse_reads_at_most_the_datagram_limit() {
    let mut datagram = b"STATUS=".to_vec();
    datagram.resize(3 * MAX_DATAGRAM, b'x');
    datagram.extend_from_slice(b"\nREADY=1");
    let m = parse(&datagram);
    assert!(!m.ready);
    assert_eq!(
        m.status.map(|s| s.len()),
        Some(MAX_DATAGRAM - "STATUS=".len())
    );
}

#[tokio::test]
async fn a_datagram_carries_the_senders_pid() {
    let socket = NotifySocket::bind().expect("bind");
    let client = Client::unbound().expect("client");
    client
        .send_to(b"READY=1\nSTATUS=warming up", socket.env_value())
        .expect("send");
    let m = next(&socket).await;
    assert_eq!(m.pid, Some(own_pid()));
    assert!(m.ready);
    assert_eq!(m.status.as_deref(), Some("warming up"));
}

#[tokio::test]
async fn a_python_client_is_understood() {
    let socket = NotifySocket::bind().expect("bind");
    let script = "import socket, os\n\
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)\n\
        s.sendto(b'READY=1\\nSTATUS=warming up', os.environ['NOTIFY_SOCKET'])";
    let spawned = Command::new("python3")
        .args(["-c", script])
        .env("NOTIFY_SOCKET", socket.env_value())
        .spawn();
    let Ok(mut child) = spawned else {
        eprintln!("python3 is not installed: skipped");
        return;
    };
    let m = next(&socket).await;
    assert!(child.wait().expect("wait").success());
    assert_eq!(m.pid, Some(i32::try_from(child.id()).expect("pid")));
    assert!(m.ready);
    assert_eq!(m.status.as_deref(), Some("warming up"));
}

#[tokio::test]
async fn systemd_notify_is_understood() {
    let socket = NotifySocket::bind().expect("bind");
    let spawned = Command::new("systemd-notify")
        .args(["--ready", "--status=up"])
        .env("NOTIFY_SOCKET", socket.env_value())
        .stderr(Stdio::null())
        .spawn();
    let Ok(mut child) = spawned else {
        eprintln!("systemd-notify is not installed: skipped");
        return;
    };
    let child_pid = i32::try_from(child.id()).expect("pid");
    // Newer versions then wait on a barrier: a datagram carrying a pipe that
    // counts as acknowledged when the receiver lets go of it.
    let exited = tokio::task::spawn_blocking(move || child.wait());
    tokio::pin!(exited);
    let mut ready = None;
    let status = tokio::time::timeout(PATIENCE, async {
        loop {
            tokio::select! {
                status = &mut exited => break status,
                m = socket.recv() => {
                    let m = m.expect("recv");
                    if m.ready {
                        ready = Some(m);
                    }
                }
            }
        }
    })
    .await
    .expect("systemd-notify exits in time")
    .expect("join")
    .expect("wait");
    assert!(status.success(), "{status}");
    let m = ready.expect("READY=1");
    assert_eq!(m.status.as_deref(), Some("up"));
    // As root it sends on behalf of its parent, otherwise as itself.
    let pid = m.pid.expect("pid");
    assert!(pid == child_pid || pid == own_pid(), "{pid}");
}

#[tokio::test]
async fn truncated_datagrams_are_skipped() {
    let socket = NotifySocket::bind().expect("bind");
    let client = Client::unbound().expect("client");
    let mut big = b"READY=1\n".to_vec();
    big.resize(MAX_DATAGRAM + 1, b'x');
    client.send_to(&big, socket.env_value()).expect("send");
    client
        .send_to(b"STATUS=next", socket.env_value())
        .expect("send");
    let m = next(&socket).await;
    assert!(!m.ready);
    assert_eq!(m.status.as_deref(), Some("next"));
    // Exactly the limit still fits.
    let mut full = b"READY=1\n".to_vec();
    full.resize(MAX_DATAGRAM, b'x');
    client.send_to(&full, socket.env_value()).expect("send");
    assert!(next(&socket).await.ready);
}

#[tokio::test]
async fn passed_file_descriptors_are_never_kept() {
    use nix::sys::socket::{ControlMessage, sendmsg};
    let socket = NotifySocket::bind().expect("bind");
    let client = Client::unbound().expect("client");
    client.connect(socket.env_value()).expect("connect");
    // Non-blocking, so that a kept copy fails the test instead of hanging it.
    let flags = nix::fcntl::OFlag::O_NONBLOCK | nix::fcntl::OFlag::O_CLOEXEC;
    let (read_end, write_end) = nix::unistd::pipe2(flags).expect("pipe");
    let fds = [write_end.as_raw_fd()];
    let payload = [std::io::IoSlice::new(b"READY=1")];
    let cmsg = [ControlMessage::ScmRights(&fds)];
    sendmsg::<()>(client.as_raw_fd(), &payload, &cmsg, MsgFlags::empty(), None).expect("sendmsg");
    drop(write_end);
    let m = next(&socket).await;
    // The credentials found no room either: an anonymous message.
    assert_eq!(m.pid, None);
    assert!(m.ready);
    // ganger held no copy of the write end, so the pipe is at its end.
    let mut buf = [0_u8; 1];
    assert_eq!(nix::unistd::read(&read_end, &mut buf), Ok(0));
}

#[tokio::test]
async fn the_directory_is_private_and_removed_on_drop() {
    let socket = NotifySocket::bind().expect("bind");
    let path = PathBuf::from(socket.env_value());
    assert!(path.is_absolute());
    assert!(path.as_os_str().len() <= MAX_PATH);
    let dir = path.parent().expect("directory").to_path_buf();
    let mode = std::fs::metadata(&dir)
        .expect("metadata")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o700);
    let other = NotifySocket::bind().expect("bind");
    assert_ne!(other.env_value(), socket.env_value());
    drop(socket);
    assert!(!dir.exists());
    assert!(PathBuf::from(other.env_value()).exists());
}

#[test]
fn binding_outside_a_runtime_is_an_error() {
    assert!(NotifySocket::bind().is_err());
}
