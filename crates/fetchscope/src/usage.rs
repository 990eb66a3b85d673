//! Usage errors in fetchscope's one style (`fetchscope: …`), with a pointer for the curl
//! options a newcomer reaches for first.

use clap::error::{ContextKind, ContextValue, ErrorKind};

/// Prints a command-line parse error (or the help or version it stands for) and returns
/// the exit status: 0 for help and version, 2 for a usage error.
pub fn report(e: &clap::Error) -> i32 {
    match e.kind() {
        ErrorKind::DisplayHelp
        | ErrorKind::DisplayVersion
        | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = e.print();
            e.exit_code()
        }
        _ => {
            eprint!("{}", render(e));
            crate::run::EXIT_USAGE
        }
    }
}

/// The text of a usage error: clap's message with `fetchscope:` in front, the pointer
/// for a known curl option after it, then clap's usage lines.
pub fn render(e: &clap::Error) -> String {
    let text = e.render().to_string();
    let text = text.strip_prefix("error: ").unwrap_or(&text);
    let (first, rest) = text.split_once('\n').unwrap_or((text, ""));
    let mut out = format!("fetchscope: {first}\n");
    if let Some(hint) = unknown_argument(e).and_then(|a| curl_hint(&a)) {
        out.push_str(&format!("  {hint}\n"));
    }
    // clap's "to pass '-k' as a value, use '-- -k'" would make the option the URL.
    for line in rest.split_inclusive('\n') {
        if !line.contains("use '-- ") {
            out.push_str(line);
        }
    }
    if !out.ends_with('\n') {
        out.push('\n');
    }
    // Removing a tip may leave two blank lines in a row.
    while out.contains("\n\n\n") {
        out = out.replace("\n\n\n", "\n\n");
    }
    out
}

/// The unknown argument of an "unexpected argument" error, without any `=value`.
fn unknown_argument(e: &clap::Error) -> Option<String> {
    if e.kind() != ErrorKind::UnknownArgument {
        return None;
    }
    match e.get(ContextKind::InvalidArg) {
        Some(ContextValue::String(s)) => Some(s.split('=').next().unwrap_or(s).to_string()),
        _ => None,
    }
}

/// What to use instead of a curl (or wget) option fetchscope does not take.
pub fn curl_hint(arg: &str) -> Option<&'static str> {
    Some(match arg {
        "-v" | "--verbose" | "-vv" | "--trace" | "--trace-ascii" => {
            "fetchscope shows every packet, state change and header without -v; --json gives the same as NDJSON events"
        }
        "-b" | "--cookie" => "send cookies with -H 'Cookie: name=value'",
        "-e" | "--referer" => "send it with -H 'Referer: URL'",
        "--data-raw" => "use --data-binary DATA: the bytes exactly as given",
        "-F" | "--form" => {
            "fetchscope cannot send multipart forms yet; send a urlencoded form with -d 'a=1&b=2' or a file with --data-binary @FILE"
        }
        "-S" | "--show-error" | "-q" | "--quiet" => {
            "-s/--silent shows only errors and what -o and -w ask for; --json gives every event as NDJSON"
        }
        "-O" | "--remote-name" => "use -o FILE to write the body to a file",
        "-i" | "--include" => "the response's status line and headers are always shown",
        "-6" | "--ipv6" => {
            "in the built-in lab use --ipv6; with --tun give the stack an IPv6 --addr"
        }
        "-4" | "--ipv4" => {
            "the stack uses IPv4 unless it has an IPv6 address (--ipv6 in the lab, an IPv6 --addr with --tun)"
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Cli;
    use clap::Parser;

    fn error_text(args: &[&str]) -> String {
        let e = Cli::try_parse_from(args).expect_err("a usage error");
        render(&e)
    }

    #[test]
    fn usage_errors_are_in_fetchscopes_style() {
        let t = error_text(&["fetchscope", "fetch", "--nope"]);
        assert!(
            t.starts_with("fetchscope: unexpected argument '--nope'"),
            "{t}"
        );
        assert!(!t.contains("error:"), "{t}");
        assert!(t.contains("Usage: fetchscope fetch"), "{t}");
    }

    #[test]
    fn curl_options_get_a_pointer() {
        for (flag, words) in [
            ("-v", "without -v"),
            ("-b", "-H 'Cookie: name=value'"),
            ("-F", "multipart"),
            ("-O", "-o FILE"),
        ] {
            let t = error_text(&["fetchscope", "fetch", flag, "x"]);
            assert!(t.contains(words), "{flag}: {t}");
            assert!(t.starts_with("fetchscope: "), "{flag}: {t}");
        }
    }

    #[test]
    fn negative_and_zero_timeouts_are_explained() {
        for v in ["-1", "0", "nan", "100000"] {
            let t = error_text(&["fetchscope", "fetch", "--timeout", v]);
            assert!(t.contains("more than 0 and at most 86400"), "{v}: {t}");
            assert!(!t.contains("-- -1"), "{v}: {t}");
        }
    }
}
