//! The start of the response body in the text output: a text body's first lines (control
//! characters shown escaped, so a body cannot drive the terminal), a binary body's first
//! bytes in hex.

/// The most lines of a text body shown.
pub const PREVIEW_LINES: usize = 20;
/// The most characters of a text body shown.
pub const PREVIEW_CHARS: usize = 2000;

/// What the text output shows of a body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Preview {
    /// Lines of text, and what was left out (lines counted in the kept start only).
    Text {
        /// The lines shown, escaped.
        lines: Vec<String>,
        /// Whether more of the body exists than is shown.
        more: bool,
    },
    /// A binary body: its first bytes in hex.
    Binary {
        /// Up to 16 bytes as hex pairs.
        hex: String,
    },
}

/// The preview of a body whose first bytes are `start` (`truncated`: the body goes on
/// after them), with `content_type` when the server sent one. `None` for an empty body.
pub fn preview(start: &[u8], truncated: bool, content_type: Option<&str>) -> Option<Preview> {
    if start.is_empty() {
        return None;
    }
    let text = match content_type {
        Some(ct) => is_text_type(ct) && looks_like_text(start),
        None => looks_like_text(start),
    };
    if !text {
        let hex = start
            .iter()
            .take(16)
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(" ");
        return Some(Preview::Binary { hex });
    }
    let decoded = String::from_utf8_lossy(start);
    let mut lines = Vec::new();
    let mut chars = 0;
    let mut more = truncated;
    for (i, line) in decoded.split('\n').enumerate() {
        if i >= PREVIEW_LINES || chars >= PREVIEW_CHARS {
            more = true;
            break;
        }
        let line = line.strip_suffix('\r').unwrap_or(line);
        let kept: String = line.chars().take(PREVIEW_CHARS - chars).collect();
        if kept.chars().count() < line.chars().count() {
            more = true;
        }
        chars += kept.chars().count();
        lines.push(escape(&kept));
    }
    while lines.last().is_some_and(String::is_empty) {
        lines.pop();
    }
    Some(Preview::Text { lines, more })
}

/// `start` with every occurrence of a secret (as sent, and as a JSON string would escape
/// it) replaced by `<redacted, N bytes>`, and a secret's beginning at the very end (cut by
/// the preview's length) removed.
pub fn redact(start: &[u8], secrets: &[String]) -> Vec<u8> {
    let mut out = start.to_vec();
    for secret in secrets {
        let escaped = serde_json::to_string(secret).unwrap_or_default();
        let escaped = escaped
            .strip_prefix('"')
            .and_then(|e| e.strip_suffix('"'))
            .unwrap_or_default()
            .to_owned();
        let mark = format!("<redacted, {} bytes>", secret.len());
        for form in [secret.as_str(), escaped.as_str()] {
            if form.is_empty() {
                continue;
            }
            out = replace_all(&out, form.as_bytes(), mark.as_bytes());
        }
        // A secret cut by the end of what was kept: drop its beginning.
        for cut in (4.min(secret.len())..secret.len()).rev() {
            if out.ends_with(&secret.as_bytes()[..cut]) {
                out.truncate(out.len() - cut);
                break;
            }
        }
    }
    out
}

/// `haystack` with every `needle` replaced by `with`.
fn replace_all(haystack: &[u8], needle: &[u8], with: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(haystack.len());
    let mut i = 0;
    while i < haystack.len() {
        if haystack[i..].starts_with(needle) {
            out.extend_from_slice(with);
            i += needle.len();
        } else {
            out.push(haystack[i]);
            i += 1;
        }
    }
    out
}

/// Whether a `Content-Type` names text.
fn is_text_type(ct: &str) -> bool {
    let ct = ct.to_ascii_lowercase();
    let essence = ct.split(';').next().unwrap_or_default().trim();
    essence.starts_with("text/")
        || essence.ends_with("+json")
        || essence.ends_with("+xml")
        || matches!(
            essence,
            "application/json"
                | "application/xml"
                | "application/javascript"
                | "application/x-www-form-urlencoded"
                | "application/problem+json"
        )
}

/// UTF-8 (a character cut at the end is fine) without NUL bytes.
fn looks_like_text(bytes: &[u8]) -> bool {
    if bytes.contains(&0) {
        return false;
    }
    match std::str::from_utf8(bytes) {
        Ok(_) => true,
        Err(e) => e.error_len().is_none() && e.valid_up_to() + 4 > bytes.len(),
    }
}

/// `line` with control characters (except tab) written as escapes.
fn escape(line: &str) -> String {
    line.chars()
        .map(|c| {
            if c.is_control() && c != '\t' {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_bodies_show_their_first_lines() {
        let body: String = (0..30).map(|i| format!("line {i}\n")).collect();
        let Some(Preview::Text { lines, more }) =
            preview(body.as_bytes(), false, Some("text/plain"))
        else {
            panic!("text");
        };
        assert_eq!(lines.len(), PREVIEW_LINES);
        assert_eq!(lines[0], "line 0");
        assert!(more);
    }

    #[test]
    fn escapes_cannot_reach_the_terminal() {
        let Some(Preview::Text { lines, more }) =
            preview(b"a\x1b[31mred\r\n", false, Some("application/json"))
        else {
            panic!("text");
        };
        assert_eq!(lines, ["a\\u{1b}[31mred"]);
        assert!(!more);
    }

    #[test]
    fn binary_bodies_show_hex() {
        let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";
        assert_eq!(
            preview(png, true, Some("image/png")),
            Some(Preview::Binary {
                hex: "89 50 4e 47 0d 0a 1a 0a 00 00 00 0d 49 48 44 52".into()
            })
        );
        assert!(matches!(
            preview(b"\0abc", false, None),
            Some(Preview::Binary { .. })
        ));
        assert_eq!(preview(b"", false, None), None);
    }

    #[test]
    fn secrets_are_redacted_whole_escaped_or_cut() {
        let secrets = vec!["pa\"ss-word".to_owned(), "tok-123456".to_owned()];
        let body = br#"{"p": "pa\"ss-word", "t": "tok-123456", "end": "tok-12"#;
        let out = String::from_utf8(redact(body, &secrets)).unwrap();
        assert!(
            !out.contains("ss-word") && !out.contains("tok-123456"),
            "{out}"
        );
        assert!(
            out.ends_with("\"end\": \""),
            "a secret cut at the end is dropped: {out}"
        );
        assert_eq!(out.matches("<redacted, ").count(), 2, "{out}");
    }
}
