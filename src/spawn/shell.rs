//! What `sh -c` is given: the Procfile command, with `exec ` in front when
//! that makes the shell replace itself by the program without changing what
//! the line means.

/// Command names `sh` resolves before looking for a program, so that `exec NAME`
/// would run something else (`exec echo` runs /bin/echo, not the builtin) or
/// nothing (`exec :` is "not found"): the reserved words and builtins of dash,
/// POSIX sh, bash and busybox ash, whichever `/bin/sh` is. Sorted, for binary search.
const SHELL_WORDS: &[&str] = &[
    "!",
    ".",
    ":",
    "[",
    "[[",
    "]]",
    "alias",
    "bg",
    "bind",
    "break",
    "builtin",
    "caller",
    "case",
    "cd",
    "chdir",
    "command",
    "compgen",
    "complete",
    "compopt",
    "continue",
    "coproc",
    "declare",
    "dirs",
    "disown",
    "do",
    "done",
    "echo",
    "elif",
    "else",
    "enable",
    "esac",
    "eval",
    "exec",
    "exit",
    "export",
    "false",
    "fc",
    "fg",
    "fi",
    "for",
    "function",
    "getopts",
    "hash",
    "help",
    "history",
    "if",
    "in",
    "jobs",
    "kill",
    "let",
    "local",
    "logout",
    "mapfile",
    "popd",
    "printf",
    "pushd",
    "pwd",
    "read",
    "readarray",
    "readonly",
    "return",
    "select",
    "set",
    "shift",
    "shopt",
    "source",
    "suspend",
    "test",
    "then",
    "time",
    "times",
    "trap",
    "true",
    "type",
    "typeset",
    "ulimit",
    "umask",
    "unalias",
    "unset",
    "until",
    "wait",
    "while",
    "{",
    "}",
];

/// Prefixes `exec ` when the command is one simple command that runs a program,
/// so that the shell is replaced by it: one process fewer, and signals and the
/// parent death signal reach the program itself (dash does not exec the last
/// command of `sh -c` on its own). A line whose first word is a builtin, a
/// reserved word, an assignment, a redirection or an expansion is left as it
/// is: `exec` would change what it means.
#[must_use]
pub fn shell_command(command: &str) -> String {
    if is_simple(command) && command_name(command).is_some_and(|name| runs_a_program(&name)) {
        format!("exec {command}")
    } else {
        command.to_string()
    }
}

/// Whether `sh` runs the command word `name` (quotes removed) as a program
/// found on PATH or named by a path.
fn runs_a_program(name: &str) -> bool {
    // A name with a slash is a path: never a builtin or a function.
    name.contains('/') || SHELL_WORDS.binary_search(&name).is_err()
}

/// The first word of `command` with its quotes removed, when it is a plain
/// literal word: `None` when it is empty, holds an unquoted expansion, glob,
/// assignment or brace, or is followed by a redirection (`2>log cmd`), since
/// what runs is then only known to the shell.
fn command_name(command: &str) -> Option<String> {
    let mut name = String::new();
    let mut chars = command.trim_start_matches([' ', '\t']).chars();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' => break,
            '\\' => match chars.next()? {
                // A line continuation joins the word's halves.
                '\n' => {}
                c => name.push(c),
            },
            '\'' => loop {
                match chars.next()? {
                    '\'' => break,
                    c => name.push(c),
                }
            },
            '"' => {
                loop {
                    match chars.next()? {
                        '"' => break,
                        '$' | '`' => return None,
                        '\\' => match chars.next()? {
                            // The only characters a backslash escapes inside "".
                            c @ ('$' | '`' | '"' | '\\') => name.push(c),
                            '\n' => {}
                            c => {
                                name.push('\\');
                                name.push(c);
                            }
                        },
                        c => name.push(c),
                    }
                }
            }
            '$' | '`' | '<' | '>' | '=' | '*' | '?' | '[' | ']' | '{' | '}' | '~' | '!' => {
                return None;
            }
            c => name.push(c),
        }
    }
    (!name.is_empty()).then_some(name)
}

/// Whether `command` has no unquoted control operator, subshell or comment:
/// a single simple command, possibly with quoted arguments and redirections.
fn is_simple(command: &str) -> bool {
    #[derive(PartialEq)]
    enum Quote {
        None,
        Single,
        Double,
    }
    let mut quote = Quote::None;
    let mut chars = command.chars();
    while let Some(c) = chars.next() {
        match (&quote, c) {
            (Quote::None | Quote::Double, '\\') => {
                chars.next();
            }
            (Quote::None, '\'') => quote = Quote::Single,
            (Quote::None, '"') => quote = Quote::Double,
            (Quote::None, ';' | '&' | '|' | '(' | ')' | '`' | '#' | '\n' | '\r')
            | (Quote::Double, '`') => return false,
            (Quote::Single, '\'') | (Quote::Double, '"') => quote = Quote::None,
            _ => {}
        }
    }
    quote == Quote::None
}

#[cfg(test)]
mod tests {
    use super::{SHELL_WORDS, shell_command};

    #[test]
    fn exec_only_for_simple_commands() {
        assert_eq!(
            shell_command("python3 -m http.server $PORT"),
            "exec python3 -m http.server $PORT"
        );
        for cmd in [
            "a; b",
            "a && b",
            "a | b",
            "FOO=1 cmd",
            "cd dir && x",
            "sleep 1 &",
            "echo $(date)",
            "exec x",
            "trap 'x' TERM",
            "while true; do x; done",
            "a 'quoted' ; b",
            "echo 'unterminated",
            "a # comment",
            "(a)",
        ] {
            assert_eq!(shell_command(cmd), cmd);
        }
    }

    #[test]
    fn exec_only_when_the_first_word_is_a_program() {
        for cmd in [
            "bundle exec puma",
            "./bin/server --port 80",
            "/bin/echo 'a\\tb'",
            "'python3' x.py",
            "\"node\" server.js",
            "server >log 2>err",
            "ls\\\nx",
        ] {
            assert_eq!(shell_command(cmd), format!("exec {cmd}"), "{cmd}");
        }
        for cmd in [
            ":",
            "echo 'a\\tb'",
            "'echo' x",
            "\"printf\" '%s' x",
            "e\\cho x",
            "ec\\\nho x",
            "times",
            "type ls",
            "jobs",
            "[ -f x ]",
            "test -f x",
            "read line",
            "kill -0 1",
            "ulimit -n",
            "umask",
            "command -v ls",
            "FOO=bar",
            "$SERVER --port 80",
            "\"$SERVER\" x",
            "`which ls`",
            "2>err server",
            ">out server",
            "server>out",
            "*.sh",
            "~/bin/server",
            "{ server; }",
            "! server",
            "''",
        ] {
            assert_eq!(shell_command(cmd), cmd, "{cmd}");
        }
    }

    #[test]
    fn shell_words_are_sorted_for_binary_search() {
        assert!(SHELL_WORDS.windows(2).all(|w| w[0] < w[1]));
    }
}
