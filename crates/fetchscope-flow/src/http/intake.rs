//! [`feed_response`]: hands one batch of received bytes to a [`ResponseReader`].

use url::Url;

use super::{BodySink, Discard, HttpError, HttpProgress, ResponseReader, redirect};

/// What [`feed_response`] did with one batch of received bytes.
#[derive(Debug)]
pub struct Intake {
    /// What the reader reported, in order (also when it then failed).
    pub progress: Vec<HttpProgress>,
    /// The reader's error, if the bytes broke the protocol or a limit.
    pub error: Option<HttpError>,
    /// Bytes left over after the response ended (the peer sent more than it framed).
    pub extra: usize,
    /// The response is complete.
    pub complete: bool,
}

/// Feeds `data` to `reader`, the response to a GET of `url`.
///
/// Until the final head is known the bytes go in one at a time, because the head decides
/// where the body goes: a redirect that will be followed (`redirecting`, set here) has its
/// body dropped, any other response's body goes to `body`.
pub fn feed_response(
    reader: &mut ResponseReader,
    data: &[u8],
    url: &Url,
    redirecting: &mut bool,
    body: &mut dyn BodySink,
) -> Intake {
    let mut offset = 0;
    let mut progress = Vec::new();
    while offset < data.len() && !reader.is_complete() {
        let rest = data.get(offset..).unwrap_or_default();
        let input = if reader.head().is_none() {
            rest.get(..1).unwrap_or_default()
        } else {
            rest
        };
        let sink: &mut dyn BodySink = if *redirecting { &mut Discard } else { body };
        let feed = match reader.feed(input, sink) {
            Ok(f) => f,
            Err(e) => {
                return Intake {
                    progress,
                    error: Some(e),
                    extra: 0,
                    complete: false,
                };
            }
        };
        offset += feed.used;
        for p in &feed.progress {
            if let HttpProgress::Head(h) = p {
                *redirecting = matches!(redirect(h, url, "GET"), Ok(Some(_)));
            }
        }
        progress.extend(feed.progress);
        if feed.used == 0 {
            break;
        }
    }
    Intake {
        progress,
        error: None,
        extra: data.len().saturating_sub(offset),
        complete: reader.is_complete(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::Limits;

    fn url() -> Url {
        Url::parse("https://www.example.test/").unwrap()
    }

    #[test]
    fn a_final_response_keeps_its_body_and_counts_bytes_past_its_end() {
        let mut reader = ResponseReader::new("GET", Limits::default());
        let mut body = Vec::new();
        let mut redirecting = false;
        let data = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloXYZ";
        let got = feed_response(&mut reader, data, &url(), &mut redirecting, &mut body);
        assert!(got.complete);
        assert!(got.error.is_none());
        assert_eq!(got.extra, 3);
        assert_eq!(body, b"hello");
        assert!(!redirecting);
        assert_eq!(got.progress.last(), Some(&HttpProgress::Complete));
    }

    #[test]
    fn a_redirect_drops_its_body() {
        let mut reader = ResponseReader::new("GET", Limits::default());
        let mut body = Vec::new();
        let mut redirecting = false;
        let data = b"HTTP/1.1 302 Found\r\nLocation: /next\r\nContent-Length: 4\r\n\r\nmove";
        let got = feed_response(&mut reader, data, &url(), &mut redirecting, &mut body);
        assert!(got.complete);
        assert!(redirecting);
        assert!(body.is_empty());
        assert_eq!(got.extra, 0);
    }

    #[test]
    fn an_error_keeps_what_was_understood_before_it() {
        let mut reader = ResponseReader::new("GET", Limits::default());
        let mut body = Vec::new();
        let mut redirecting = false;
        let data = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n";
        let got = feed_response(&mut reader, data, &url(), &mut redirecting, &mut body);
        assert!(got.error.is_some());
        assert!(matches!(got.progress.first(), Some(HttpProgress::Head(h)) if h.status == 200));
        assert!(!got.complete);
    }
}
