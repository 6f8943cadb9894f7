//! The frames of an attached connection, after its JSON request and reply:
//! one kind byte, the payload's length as a 4-byte big-endian number, the
//! payload.
//!
//! Client to ganger: `d` keys for the pty, `w` a window size (cols and rows,
//! two big-endian u16). Ganger to client: `d` raw output of the pty, `x` the
//! end of the attach (payload: why, as text). A payload longer than
//! [`MAX_PAYLOAD`] ends the connection.

use std::io::{self, Read};

use tokio::io::{AsyncRead, AsyncReadExt};

/// Keys or output.
pub const DATA: u8 = b'd';
/// A window size.
pub const WINDOW: u8 = b'w';
/// The end, with the reason.
pub const EXIT: u8 = b'x';
/// The largest payload accepted.
pub const MAX_PAYLOAD: usize = 64 * 1024;

/// One frame, encoded.
#[must_use]
pub fn encode(kind: u8, payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len().min(MAX_PAYLOAD)).unwrap_or(u32::MAX);
    let mut frame = Vec::with_capacity(5 + payload.len());
    frame.push(kind);
    frame.extend_from_slice(&len.to_be_bytes());
    frame.extend_from_slice(&payload[..payload.len().min(MAX_PAYLOAD)]);
    frame
}

/// A window-size payload.
#[must_use]
pub fn window(cols: u16, rows: u16) -> [u8; 4] {
    let [c0, c1] = cols.to_be_bytes();
    let [r0, r1] = rows.to_be_bytes();
    [c0, c1, r0, r1]
}

/// The cols and rows of a window-size payload.
#[must_use]
pub fn parse_window(payload: &[u8]) -> Option<(u16, u16)> {
    let [c0, c1, r0, r1] = payload.try_into().ok()?;
    Some((u16::from_be_bytes([c0, c1]), u16::from_be_bytes([r0, r1])))
}

fn too_long() -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, "frame too long")
}

/// Reads one frame; `None` at a clean end of the stream.
pub async fn read<R: AsyncRead + Unpin>(reader: &mut R) -> io::Result<Option<(u8, Vec<u8>)>> {
    let mut head = [0u8; 5];
    match reader.read_exact(&mut head).await {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = payload_len(head)?;
    let mut payload = vec![0; len];
    reader.read_exact(&mut payload).await?;
    Ok(Some((head[0], payload)))
}

/// As [`read`], blocking.
pub fn read_blocking<R: Read>(reader: &mut R) -> io::Result<Option<(u8, Vec<u8>)>> {
    let mut head = [0u8; 5];
    match reader.read_exact(&mut head) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = payload_len(head)?;
    let mut payload = vec![0; len];
    reader.read_exact(&mut payload)?;
    Ok(Some((head[0], payload)))
}

fn payload_len(head: [u8; 5]) -> io::Result<usize> {
    let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]);
    let len = usize::try_from(len).map_err(|_| too_long())?;
    if len > MAX_PAYLOAD {
        return Err(too_long());
    }
    Ok(len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_read_back_and_oversized_ones_fail() {
        let mut bytes = encode(DATA, b"ls\r");
        bytes.extend(encode(WINDOW, &window(100, 30)));
        assert_eq!(bytes[..8], *b"d\0\0\0\x03ls\r");
        let mut reader = &bytes[..];
        assert_eq!(
            read_blocking(&mut reader).ok().flatten(),
            Some((DATA, b"ls\r".to_vec()))
        );
        let (kind, payload) = read_blocking(&mut reader).ok().flatten().expect("frame");
        assert_eq!((kind, parse_window(&payload)), (WINDOW, Some((100, 30))));
        assert!(matches!(read_blocking(&mut reader), Ok(None)));
        let huge = [DATA, 0xff, 0xff, 0xff, 0xff];
        assert!(read_blocking(&mut &huge[..]).is_err());
    }
}
