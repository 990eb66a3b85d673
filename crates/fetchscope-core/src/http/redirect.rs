//! Following redirects the way requests does (`SessionRedirectMixin`).
//!
//! A response redirects when it carries `Location` and its status is 301, 302, 303, 307 or
//! 308. The target is `Location` resolved against the current URL (a scheme-relative
//! `//host/path` takes the current scheme), keeping the current fragment when the target
//! has none (RFC 9110 §10.2.2). The method becomes GET for 303 (unless HEAD), for 302
//! (unless HEAD) and for 301 after POST. requests gives up after 30 redirects.

use super::error::{HttpError, quote};
use super::head::ResponseHead;

/// requests' `DEFAULT_REDIRECT_LIMIT`: more redirects than this end the fetch.
pub const MAX_REDIRECTS: usize = 30;

/// Where a redirect leads and with which method.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redirect {
    /// The absolute URL to request next.
    pub url: url::Url,
    /// The method for the next request (`GET` after 303, for example).
    pub method: String,
    /// The redirect status that led here.
    pub status: u16,
}

/// The next request if `head` (the answer to `method` on `current`) is a redirect,
/// `None` if it is not.
pub fn redirect(
    head: &ResponseHead,
    current: &url::Url,
    method: &str,
) -> Result<Option<Redirect>, HttpError> {
    if !matches!(head.status, 301 | 302 | 303 | 307 | 308) {
        return Ok(None);
    }
    let Some(location) = head.header("location") else {
        return Ok(None);
    };
    let location = latin1_to_utf8(location);
    let bad =
        |why: &str| HttpError::BadRedirect(format!("`{}`{why}", quote(location.as_bytes(), 120)));
    let mut url = current
        .join(location.trim())
        .map_err(|e| bad(&format!(", which is not a valid URL ({e})")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad(&format!(
            ": fetchscope follows only http:// and https:// redirects, not {}://",
            url.scheme()
        )));
    }
    if url.fragment().is_none() {
        url.set_fragment(current.fragment());
    }
    // Credentials in `Location` are not sent (requests does not use them) nor shown.
    let _ = url.set_username("");
    let _ = url.set_password(None);
    let method = method.to_ascii_uppercase();
    let method = match head.status {
        303 | 302 if method != "HEAD" => "GET".to_owned(),
        301 if method == "POST" => "GET".to_owned(),
        _ => method,
    };
    Ok(Some(Redirect {
        url,
        method,
        status: head.status,
    }))
}

/// Header text was read as Latin-1; requests re-reads `Location` as UTF-8 when it can.
fn latin1_to_utf8(text: &str) -> String {
    let bytes: Option<Vec<u8>> = text.chars().map(|c| u8::try_from(c).ok()).collect();
    bytes
        .and_then(|b| String::from_utf8(b).ok())
        .unwrap_or_else(|| text.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(status: u16, location: Option<&str>) -> ResponseHead {
        let headers = location
            .map(|l| vec![("Location".to_owned(), l.to_owned())])
            .unwrap_or_default();
        ResponseHead::new("GET", "HTTP/1.1", status, String::new(), headers).unwrap()
    }

    fn url(s: &str) -> url::Url {
        url::Url::parse(s).unwrap()
    }

    #[test]
    fn targets_are_resolved_like_requests() {
        let current = url("https://a.test/dir/page?q=1#frag");
        let next = |loc: &str| {
            redirect(&head(302, Some(loc)), &current, "GET")
                .unwrap()
                .unwrap()
                .url
                .to_string()
        };
        assert_eq!(next("/other"), "https://a.test/other#frag");
        assert_eq!(next("sub"), "https://a.test/dir/sub#frag");
        assert_eq!(next("//b.test/x"), "https://b.test/x#frag");
        assert_eq!(next("http://c.test/y#own"), "http://c.test/y#own");
        // UTF-8 sent raw in the header (read as Latin-1) is re-read as UTF-8, then percent-encoded.
        assert_eq!(next("/caf\u{c3}\u{a9}"), "https://a.test/caf%C3%A9#frag");
    }

    #[test]
    fn methods_change_like_requests() {
        let current = url("https://a.test/");
        let method = |status: u16, m: &str| {
            redirect(&head(status, Some("/n")), &current, m)
                .unwrap()
                .unwrap()
                .method
        };
        assert_eq!(method(303, "POST"), "GET");
        assert_eq!(method(303, "HEAD"), "HEAD");
        assert_eq!(method(302, "POST"), "GET");
        assert_eq!(method(301, "POST"), "GET");
        assert_eq!(method(301, "PUT"), "PUT");
        assert_eq!(method(307, "POST"), "POST");
        assert_eq!(method(308, "GET"), "GET");
    }

    #[test]
    fn not_redirects_and_bad_targets() {
        let current = url("https://a.test/");
        assert_eq!(
            redirect(&head(200, Some("/x")), &current, "GET").unwrap(),
            None
        );
        assert_eq!(redirect(&head(302, None), &current, "GET").unwrap(), None);
        assert_eq!(
            redirect(&head(300, Some("/x")), &current, "GET").unwrap(),
            None
        );
        let err = redirect(&head(302, Some("ftp://f.test/")), &current, "GET").unwrap_err();
        assert_eq!(err.kind(), "bad-redirect");
        let err = redirect(&head(302, Some("http://[::1")), &current, "GET").unwrap_err();
        assert_eq!(err.kind(), "bad-redirect");
    }
}
