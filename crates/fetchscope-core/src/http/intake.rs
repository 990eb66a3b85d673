//! [`feed_response`] and [`finish_response`]: hand received bytes, and the end of the
//! stream, to a [`ResponseReader`], keeping the body of the final response only.

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

impl Intake {
    /// The sentence for bytes past the end of the response, if any arrived.
    pub fn leftover_note(&self) -> Option<String> {
        (self.extra > 0).then(|| {
            format!(
                "{} bytes arrived after the end of the response; ignored",
                self.extra
            )
        })
    }
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
        let feed = match with_body_sink(*redirecting, body, |sink| reader.feed(input, sink)) {
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

/// Tells `reader` that the stream ended (the peer closed it), which completes a response
/// framed by the connection's end; the body goes where [`feed_response`] sends it.
pub fn finish_response(
    reader: &mut ResponseReader,
    redirecting: bool,
    body: &mut dyn BodySink,
) -> Result<Vec<HttpProgress>, HttpError> {
    with_body_sink(redirecting, body, |sink| reader.finish(sink))
}

/// Runs `f` with where the body goes: nowhere for a redirect that will be followed, else
/// `body`.
fn with_body_sink<R>(
    redirecting: bool,
    body: &mut dyn BodySink,
    f: impl FnOnce(&mut dyn BodySink) -> R,
) -> R {
    if redirecting {
        f(&mut Discard)
    } else {
        f(body)
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

    #[test]
    fn the_end_of_the_stream_completes_a_close_delimited_body_where_it_belongs() {
        for (status, location, kept) in [(200, "", true), (302, "/next", false)] {
            let mut reader = ResponseReader::new("GET", Limits::default());
            let mut body = Vec::new();
            let mut redirecting = false;
            let data = format!("HTTP/1.1 {status} X\r\nLocation: {location}\r\n\r\nbody");
            let got = feed_response(
                &mut reader,
                data.as_bytes(),
                &url(),
                &mut redirecting,
                &mut body,
            );
            assert!(!got.complete);
            finish_response(&mut reader, redirecting, &mut body).unwrap();
            assert!(reader.is_complete());
            assert_eq!(body.is_empty(), !kept, "status {status}");
        }
    }
}
