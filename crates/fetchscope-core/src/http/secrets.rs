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
            } else {
                (n.clone(), v.clone())
            }
        })
        .collect()
}

/// `url` as it may be shown: a password in it redacted unless `show`.
pub fn shown_url(url: &url::Url, show: bool) -> String {
    match url.password() {
        Some(p) if !show => {
            let mut u = url.clone();
            let _ = u.set_password(Some(&format!("<redacted, {} bytes>", p.len())));
            u.to_string()
        }
        _ => url.to_string(),
    }
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
        ];
        let shown = shown_headers(&h, false);
        assert_eq!(shown[0].1, "<redacted, 10 bytes>");
        assert_eq!(shown[1].1, "*/*");
        assert_eq!(shown[2].1, "<redacted, 3 bytes>");
        assert_eq!(shown_headers(&h, true), h);
    }

    #[test]
    fn url_passwords_are_redacted() {
        let u = url::Url::parse("https://me:hunter2@h.test/").unwrap();
        let s = shown_url(&u, false);
        assert!(!s.contains("hunter2"), "{s}");
        assert!(s.contains("me:"), "{s}");
        assert_eq!(shown_url(&u, true), "https://me:hunter2@h.test/");
    }
}
