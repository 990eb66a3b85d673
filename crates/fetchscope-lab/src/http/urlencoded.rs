//! Percent-decoding and `application/x-www-form-urlencoded` pairs (query strings and
//! form bodies).

/// The `key=value` pairs of a query string or form body, percent-decoded (`+` is a space).
pub(crate) fn query_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

/// Percent-decodes a query or form component: `+` is a space (invalid escapes are kept as
/// they are; invalid UTF-8 is replaced).
pub(crate) fn percent_decode(s: &str) -> String {
    decode(s, true)
}

/// Percent-decodes a path segment: `+` stays `+`.
pub(crate) fn percent_decode_path(s: &str) -> String {
    decode(s, false)
}

/// Percent-decodes `s`, turning `+` into a space when `plus_is_space`.
fn decode(s: &str, plus_is_space: bool) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let hex = |j: usize| bytes.get(j).and_then(|c| (*c as char).to_digit(16));
        match (b, hex(i + 1), hex(i + 2)) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (b'+', _, _) if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_and_escapes() {
        assert_eq!(
            query_pairs("a=1&b=x+y%21&&c&a=2"),
            [("a", "1"), ("b", "x y!"), ("c", ""), ("a", "2")]
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
        );
        assert_eq!(percent_decode("a%2"), "a%2");
        assert_eq!(percent_decode("%e2%86%92+x"), "→ x");
        assert_eq!(percent_decode_path("a+b%20c"), "a+b c");
    }
}
