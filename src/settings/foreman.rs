//! foreman's `.foreman`: a YAML map of flag defaults (`formation: web=2`,
//! `port: 6000`, `procfile: Procfile.dev`, `env: .env.dev`, `timeout: 10`), so
//! that a foreman project keeps its defaults under ganger.

use std::path::Path;

use crate::error::{Error, Result};

/// `(flag, values)` pairs in file order. Keys may be written as Ruby symbols
/// (`:port:`), as foreman's own files sometimes are; `concurrency` is
/// foreman's old name for `formation`.
pub fn parse(path: &Path, text: &str) -> Result<Vec<(String, Vec<String>)>> {
    let fail = |reason: String| Error::Foreman {
        path: path.to_path_buf(),
        reason,
    };
    if text.trim().is_empty() {
        return Ok(Vec::new());
    }
    let value: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(text).map_err(|e| fail(e.to_string()))?;
    let serde_yaml_ng::Value::Mapping(map) = value else {
        return Err(fail(
            "expected a map of options, such as `port: 5000`".to_string(),
        ));
    };
    let mut out = Vec::new();
    for (key, value) in map {
        let Some(key) = key.as_str() else {
            return Err(fail(format!("option name {key:?} is not text")));
        };
        let name = key.trim_start_matches(':');
        let name = if name == "concurrency" {
            "formation"
        } else {
            name
        };
        let values = match value {
            serde_yaml_ng::Value::Null => continue,
            serde_yaml_ng::Value::Bool(b) => vec![b.to_string()],
            serde_yaml_ng::Value::Number(n) => vec![n.to_string()],
            serde_yaml_ng::Value::String(s) => vec![s],
            serde_yaml_ng::Value::Sequence(items) => items
                .into_iter()
                .map(|item| match item {
                    serde_yaml_ng::Value::String(s) => Ok(s),
                    serde_yaml_ng::Value::Number(n) => Ok(n.to_string()),
                    other => Err(fail(format!("option `{name}`: {other:?} is not text"))),
                })
                .collect::<Result<_>>()?,
            other => return Err(fail(format!("option `{name}`: {other:?} is not a value"))),
        };
        out.push((name.replace('_', "-"), values));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_and_symbols_and_old_names() {
        let got = parse(
            Path::new(".foreman"),
            "concurrency: web=2\n:port: 6000\nprocfile: Procfile.dev\nno_timestamp: true\n",
        )
        .expect("parses");
        assert_eq!(
            got,
            [
                ("formation".to_string(), vec!["web=2".to_string()]),
                ("port".to_string(), vec!["6000".to_string()]),
                ("procfile".to_string(), vec!["Procfile.dev".to_string()]),
                ("no-timestamp".to_string(), vec!["true".to_string()]),
            ]
        );
    }

    #[test]
    fn not_a_map_is_an_error_naming_the_file() {
        let msg = parse(Path::new(".foreman"), "- a\n- b\n")
            .expect_err("a list")
            .to_string();
        assert!(msg.starts_with(".foreman: "), "{msg}");
    }
}
