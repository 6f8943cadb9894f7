//! The control protocol's messages: one JSON object per line each way, the
//! same types on both ends (the server in `start`, the clients `ps`, `restart`,
//! `stop`, `scale` and `quit`), so the two cannot drift apart.
//!
//! Requests: `{"cmd":"ps"}`, `{"cmd":"restart","targets":["web"]}`,
//! `{"cmd":"stop","targets":["web.2"]}`, `{"cmd":"scale","spec":"web=3"}`,
//! `{"cmd":"quit"}`, `{"cmd":"health"}`. Every reply has `"ok"`; a failed one has `"error"`, a
//! successful one `"message"` or, for `ps`, `"instances"`.

use serde::{Deserialize, Serialize};

/// A request from a client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "lowercase")]
pub enum Request {
    Ps,
    Restart {
        #[serde(default)]
        targets: Vec<String>,
    },
    Stop {
        targets: Vec<String>,
    },
    Scale {
        spec: String,
    },
    Quit,
    Health,
}

/// One row of `ganger ps`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Row {
    /// `web.1`.
    pub name: String,
    /// `web`.
    #[serde(rename = "type")]
    pub kind: String,
    pub pid: Option<i32>,
    /// `running`, `stopping`, `restarting in 2s`, `stopped`, `exited 3`, ...
    pub state: String,
    /// Seconds since the current run started, while it runs.
    pub uptime: Option<f64>,
    pub restarts: u32,
    pub port: u16,
}

/// The answer to one request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reply {
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instances: Option<Vec<Row>>,
}

impl Reply {
    /// Success, with a message for the user.
    #[must_use]
    pub fn done(message: impl Into<String>) -> Self {
        Reply {
            ok: true,
            message: Some(message.into()),
            error: None,
            instances: None,
        }
    }

    /// Failure, with the reason.
    #[must_use]
    pub fn failed(error: impl Into<String>) -> Self {
        Reply {
            ok: false,
            message: None,
            error: Some(error.into()),
            instances: None,
        }
    }

    /// The `ps` table.
    #[must_use]
    pub fn table(rows: Vec<Row>) -> Self {
        Reply {
            ok: true,
            message: None,
            error: None,
            instances: Some(rows),
        }
    }

    /// The reply as one protocol line, newline included.
    #[must_use]
    pub fn to_line(&self) -> Vec<u8> {
        let mut line = serde_json::to_vec(self)
            .unwrap_or_else(|_| br#"{"ok":false,"error":"cannot encode the reply"}"#.to_vec());
        line.push(b'\n');
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_parse_and_garbage_does_not() {
        let parse = |s: &str| serde_json::from_str::<Request>(s);
        assert_eq!(parse(r#"{"cmd":"ps"}"#).ok(), Some(Request::Ps));
        assert_eq!(
            parse(r#"{"cmd":"restart"}"#).ok(),
            Some(Request::Restart { targets: vec![] })
        );
        assert_eq!(
            parse(r#"{"cmd":"scale","spec":"web=2"}"#).ok(),
            Some(Request::Scale {
                spec: "web=2".into()
            })
        );
        for bad in [r#"{"cmd":"stop"}"#, r#"{"cmd":"dance"}"#, "[]", "ps"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_request_reads_back_as_itself() {
        let request = Request::Stop {
            targets: vec!["web.2".into()],
        };
        let text = serde_json::to_string(&request).expect("encodes");
        assert_eq!(text, r#"{"cmd":"stop","targets":["web.2"]}"#);
        assert_eq!(serde_json::from_str::<Request>(&text).ok(), Some(request));
    }

    #[test]
    fn replies_keep_the_documented_shape() {
        let line = Reply::failed("no such thing").to_line();
        assert_eq!(line, b"{\"ok\":false,\"error\":\"no such thing\"}\n");
        let line = Reply::done("scaled web 1 -> 2").to_line();
        assert_eq!(line, b"{\"ok\":true,\"message\":\"scaled web 1 -> 2\"}\n");
    }
}
