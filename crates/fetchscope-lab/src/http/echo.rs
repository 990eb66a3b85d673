//! The routes that answer with what the request said, shaped like httpbin.org's:
//! `/anything` (any method, the request as JSON) and `/basic-auth/USER/PASSWD`.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value, json};

use super::request::Request;
use super::response::{Body, Response};
use super::routes::RouteContext;
use super::urlencoded::{percent_decode_path, query_pairs};

/// The media type of form bodies that `/anything` parses into `form`.
const FORM_TYPE: &str = "application/x-www-form-urlencoded";

/// The realm `/basic-auth` names in `WWW-Authenticate`, as httpbin's.
const REALM: &str = "Fake Realm";

/// `/anything` and `/anything/...`: 200 with the request as JSON (`args`, `data`,
/// `files`, `form`, `headers`, `json`, `method`, `origin`, `url`).
pub(crate) fn anything(request: &Request, _: &str, cx: &RouteContext) -> Response {
    let is_form = request
        .header("content-type")
        .and_then(|ct| ct.split(';').next().map(str::trim).map(str::to_owned))
        .is_some_and(|ct| ct.eq_ignore_ascii_case(FORM_TYPE));
    let (data, form) = if is_form {
        let text = String::from_utf8_lossy(&request.body);
        (String::new(), multi_map(query_pairs(&text)))
    } else {
        (data_text(&request.body), Map::new())
    };
    let mut echo = Map::new();
    echo.insert(
        "args".into(),
        Value::Object(multi_map(query_pairs(request.query()))),
    );
    echo.insert("data".into(), Value::String(data));
    echo.insert("files".into(), Value::Object(Map::new()));
    echo.insert("form".into(), Value::Object(form));
    echo.insert("headers".into(), Value::Object(header_map(request)));
    echo.insert("json".into(), body_json(request, is_form));
    echo.insert("method".into(), Value::String(request.method.clone()));
    if let Some(origin) = cx.origin {
        echo.insert("origin".into(), Value::String(origin.to_string()));
    }
    let url = format!("{}://{}{}", cx.scheme, request.host(), request.target);
    echo.insert("url".into(), Value::String(url));
    json_response(200, "OK", &Value::Object(echo))
}

/// `/basic-auth/USER/PASSWD`: 200 `{"authenticated": true, "user": USER}` when the
/// request's `Authorization: Basic` credentials are USER:PASSWD, else 401 with a
/// `WWW-Authenticate` challenge and an empty body; 404 without both path segments.
pub(crate) fn basic_auth(request: &Request, rest: &str, _: &RouteContext) -> Response {
    let Some((user, passwd)) = rest
        .split_once('/')
        .filter(|(u, p)| !u.is_empty() && !p.is_empty() && !p.contains('/'))
    else {
        return super::routes::not_found();
    };
    let (user, passwd) = (percent_decode_path(user), percent_decode_path(passwd));
    if basic_credentials(request, "authorization")
        .is_some_and(|c| c == format!("{user}:{passwd}").as_bytes())
    {
        return json_response(200, "OK", &json!({"authenticated": true, "user": user}));
    }
    let mut r = Response::new(401, "Unauthorized", "", Body::Bytes(Vec::new()))
        .header("WWW-Authenticate", format!("Basic realm=\"{REALM}\""));
    r.content_type = None;
    r
}

/// The decoded `user:password` bytes of a `Basic` credentials field `field` (lower case:
/// `authorization`, or `proxy-authorization` for the lab's proxy).
pub(crate) fn basic_credentials(request: &Request, field: &str) -> Option<Vec<u8>> {
    let value = request.header(field)?;
    let (scheme, token) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    STANDARD.decode(token.trim()).ok()
}

/// A JSON response: `value` pretty-printed with a final newline, as httpbin sends it.
pub(crate) fn json_response(status: u16, reason: &'static str, value: &Value) -> Response {
    let mut text = serde_json::to_string_pretty(value).unwrap_or_else(|_| "null".to_owned());
    text.push('\n');
    Response::new(
        status,
        reason,
        "application/json",
        Body::Bytes(text.into_bytes()),
    )
}

/// The body as `data` shows it: its text when it is UTF-8, else a base64 `data:` URL.
fn data_text(body: &[u8]) -> String {
    match std::str::from_utf8(body) {
        Ok(text) => text.to_owned(),
        Err(_) => format!(
            "data:application/octet-stream;base64,{}",
            STANDARD.encode(body)
        ),
    }
}

/// The body parsed as JSON, or `null` when it is empty, not JSON, or a form.
fn body_json(request: &Request, is_form: bool) -> Value {
    if is_form {
        return Value::Null;
    }
    serde_json::from_slice(&request.body).unwrap_or(Value::Null)
}

/// `pairs` as a JSON object: a key seen once maps to its string, a repeated key to the
/// list of its strings (as httpbin shows `args` and `form`).
fn multi_map(pairs: Vec<(String, String)>) -> Map<String, Value> {
    let mut map = Map::new();
    for (key, value) in pairs {
        match map.get_mut(&key) {
            None => {
                map.insert(key, Value::String(value));
            }
            Some(Value::Array(list)) => list.push(Value::String(value)),
            Some(first) => {
                let earlier = first.take();
                *first = Value::Array(vec![earlier, Value::String(value)]);
            }
        }
    }
    map
}

/// The request's header fields with Title-Case names (`content-type` → `Content-Type`);
/// repeated fields are joined with `,`, as httpbin shows them.
fn header_map(request: &Request) -> Map<String, Value> {
    let mut map = Map::new();
    for (name, value) in &request.headers {
        let value = String::from_utf8_lossy(value).into_owned();
        match map.get_mut(&title_case(name)) {
            Some(Value::String(earlier)) => {
                earlier.push(',');
                earlier.push_str(&value);
            }
            _ => {
                map.insert(title_case(name), Value::String(value));
            }
        }
    }
    map
}

/// `name` with the first letter of each `-`-separated word upper case, the rest lower.
fn title_case(name: &str) -> String {
    name.split('-')
        .map(|word| {
            let mut chars = word.chars();
            chars.next().map_or_else(String::new, |first| {
                first.to_ascii_uppercase().to_string() + &chars.as_str().to_ascii_lowercase()
            })
        })
        .collect::<Vec<_>>()
        .join("-")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn title_case_names_and_repeated_keys() {
        assert_eq!(title_case("content-type"), "Content-Type");
        assert_eq!(title_case("x-amz-DATE"), "X-Amz-Date");
        assert_eq!(title_case("te"), "Te");
        let pairs = vec![
            ("a".to_owned(), "1".to_owned()),
            ("b".to_owned(), "2".to_owned()),
            ("a".to_owned(), "3".to_owned()),
            ("a".to_owned(), "4".to_owned()),
        ];
        assert_eq!(
            Value::Object(multi_map(pairs)),
            json!({"a": ["1", "3", "4"], "b": "2"})
        );
    }

    #[test]
    fn data_is_text_or_a_base64_data_url() {
        assert_eq!(data_text("héllo".as_bytes()), "héllo");
        assert_eq!(
            data_text(&[0xff, 0x00, 0x01]),
            "data:application/octet-stream;base64,/wAB"
        );
    }
}
