//! Secrets in request and response heads (credentials, tokens, cookies) are shown as
//! `<redacted, N bytes>` in every output unless the user asks to see them
//! (`--show-secrets`); the bytes on the wire are never changed.

/// Header fields whose values are secrets.
pub const SECRET_HEADERS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
];

/// Whether the value of the header `name` is a secret.
pub fn is_secret_header(name: &str) -> bool {
    SECRET_HEADERS.iter().any(|s| s.eq_ignore_ascii_case(name))
}

/// What is shown instead of a secret `value`.
pub fn redacted(value: &str) -> String {
    format!("<redacted, {} bytes>", value.len())
}

/// `headers` as they may be shown: secret values redacted unless `show`.
pub fn shown_headers(headers: &[(String, String)], show: bool) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(n, v)| {
            if !show && is_secret_header(n) {
                (n.clone(), redacted(v))
            } else if !show && n.eq_ignore_ascii_case("location") {
                (n.clone(), text_without_password(v))
            } else {
                (n.clone(), v.clone())
            }
        })
        .collect()
}

/// A URL as the user typed it (`scheme://user:password@host...`, maybe unparsable), with
/// the password replaced, for messages that quote it.
pub fn text_without_password(value: &str) -> String {
    // The authority: after `//` (or from the start, for `user:pass@host` without a
    // scheme), up to the path, query or fragment.
    let start = value.find("//").map_or(0, |i| i + 2);
    let rest = value.get(start..).unwrap_or_default();
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = rest.get(..end).unwrap_or_default();
    let Some((userinfo, _)) = authority.rsplit_once('@') else {
        return value.to_owned();
    };
    let shown = match userinfo.split_once(':') {
        Some((user, _)) => format!("{user}:<redacted>"),
        None => "<redacted>".to_owned(),
    };
    format!(
        "{}{shown}{}",
        value.get(..start).unwrap_or_default(),
        value.get(start + userinfo.len()..).unwrap_or_default()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_values_are_redacted_with_their_length() {
        let h = vec![
            ("Authorization".to_owned(), "Basic dTpw".to_owned()),
            ("Accept".to_owned(), "*/*".to_owned()),
            ("set-cookie".to_owned(), "a=b".to_owned()),
            ("Location".to_owned(), "https://u:tok@cdn.test/x".to_owned()),
        ];
        let shown = shown_headers(&h, false);
        assert_eq!(shown[0].1, "<redacted, 10 bytes>");
        assert_eq!(shown[1].1, "*/*");
        assert_eq!(shown[2].1, "<redacted, 3 bytes>");
        assert_eq!(shown[3].1, "https://u:<redacted>@cdn.test/x");
        assert_eq!(shown_headers(&h, true), h);
    }

    #[test]
    fn typed_urls_lose_their_password() {
        assert_eq!(
            text_without_password("https://me:pw@h:99999/x"),
            "https://me:<redacted>@h:99999/x"
        );
        assert_eq!(text_without_password("h.test/x"), "h.test/x");
        assert_eq!(
            text_without_password("me:pw@proxy:3128"),
            "me:<redacted>@proxy:3128"
        );
        assert_eq!(
            text_without_password("https://h.test/a@b"),
            "https://h.test/a@b"
        );
        assert_eq!(
            text_without_password("//tok@h.test/"),
            "//<redacted>@h.test/"
        );
        assert_eq!(text_without_password("/path@x"), "/path@x");
    }

    #[test]
    fn url_passwords_are_redacted() {
        let u = url::Url::parse("https://me:hunter2@h.test/").unwrap();
        let s = text_without_password(u.as_str());
        assert!(!s.contains("hunter2"), "{s}");
        assert!(s.contains("me:"), "{s}");
    }
}
