//! AWS Signature Version 4, checked as AWS checks it: the canonical request rebuilt from the
//! method, path, query, signed headers and the body's hash, signed with a key derived from the
//! caller's secret, compared with the signature sent; and a signing time no more than 15 minutes
//! from now.

use axum::http::{HeaderMap, Method, Uri};
use glaux_engine::percent_decode;
use ring::{digest, hmac};

/// How far a request's X-Amz-Date may be from the server's clock.
const MAX_SKEW_SECONDS: i64 = 15 * 60;

/// The parts of an `Authorization: AWS4-HMAC-SHA256 …` header.
pub struct Signed<'a> {
    pub access_key: &'a str,
    /// `date/region/service/aws4_request`
    scope: &'a str,
    signed_headers: Vec<&'a str>,
    signature: &'a str,
}

/// Parses the header's value after the scheme; `None` if a part is missing.
pub fn parse(rest: &str) -> Option<Signed<'_>> {
    let mut credential = None;
    let mut signed_headers = None;
    let mut signature = None;
    for part in rest.split(',') {
        let (name, value) = part.trim().split_once('=')?;
        match name {
            "Credential" => credential = Some(value),
            "SignedHeaders" => signed_headers = Some(value.split(';').collect()),
            "Signature" => signature = Some(value),
            _ => {}
        }
    }
    let (access_key, scope) = credential?.split_once('/')?;
    Some(Signed { access_key, scope, signed_headers: signed_headers?, signature: signature? })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Lower- or upper-case hex to bytes; `None` if it is not hex.
fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len()).step_by(2).map(|i| text.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok())).collect()
}

fn sha256_hex(data: &[u8]) -> String {
    hex(digest::digest(&digest::SHA256, data).as_ref())
}

fn mac(key: &[u8], data: &str) -> Vec<u8> {
    hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), data.as_bytes()).as_ref().to_vec()
}

/// RFC 3986 encoding as SigV4 wants it: unreserved characters stay, the rest is %XX.
pub(crate) fn encode(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, UNRESERVED_KEPT).to_string()
}

/// Everything but RFC 3986's unreserved characters is encoded.
const UNRESERVED_KEPT: &percent_encoding::AsciiSet =
    &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

fn canonical_query(query: Option<&str>) -> String {
    let mut pairs: Vec<(String, String)> = query
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (encode(&percent_decode(k)), encode(&percent_decode(v)))
        })
        .collect();
    pairs.sort();
    pairs.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&")
}

fn canonical_path(path: &str) -> String {
    if path.is_empty() {
        return "/".into();
    }
    path.split('/').map(|segment| encode(&percent_decode(segment))).collect::<Vec<_>>().join("/")
}

/// Why a signed request is refused, in words that name no secret; `None` if it is good.
pub fn verify(
    signed: &Signed,
    secret: &str,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
    now: chrono::DateTime<chrono::Utc>,
) -> Option<&'static str> {
    let Some(amz_date) = headers.get("x-amz-date").and_then(|v| v.to_str().ok()) else {
        return Some("the request has no X-Amz-Date");
    };
    let Ok(when) = chrono::NaiveDateTime::parse_from_str(amz_date, "%Y%m%dT%H%M%SZ") else {
        return Some("X-Amz-Date is not a date");
    };
    if (now.naive_utc() - when).num_seconds().abs() > MAX_SKEW_SECONDS {
        return Some("Signature expired: the request's time is more than 15 minutes from the server's");
    }
    let mut scope = signed.scope.split('/');
    let (Some(date), Some(region), Some(service), Some("aws4_request")) =
        (scope.next(), scope.next(), scope.next(), scope.next())
    else {
        return Some("the credential scope is malformed");
    };
    if !amz_date.starts_with(date) {
        return Some("the credential scope's date is not the request's");
    }
    if !signed.signed_headers.contains(&"host") {
        return Some("the host header must be signed");
    }
    let mut canonical_headers = String::new();
    for name in &signed.signed_headers {
        let values: Vec<String> = headers
            .get_all(*name)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).split_whitespace().collect::<Vec<_>>().join(" "))
            .collect();
        if values.is_empty() {
            return Some("a signed header is missing from the request");
        }
        canonical_headers.push_str(&format!("{name}:{}\n", values.join(",")));
    }
    let payload = headers
        .get("x-amz-content-sha256")
        .and_then(|v| v.to_str().ok())
        .filter(|v| *v != "UNSIGNED-PAYLOAD")
        .map(str::to_string)
        .unwrap_or_else(|| sha256_hex(body));
    if payload != sha256_hex(body) {
        return Some("the body does not match its signed hash");
    }
    let canonical = format!(
        "{method}\n{}\n{}\n{canonical_headers}\n{}\n{payload}",
        canonical_path(uri.path()),
        canonical_query(uri.query()),
        signed.signed_headers.join(";"),
    );
    let to_sign = format!("AWS4-HMAC-SHA256\n{amz_date}\n{}\n{}", signed.scope, sha256_hex(canonical.as_bytes()));
    let key = ["aws4_request"]
        .iter()
        .fold(mac(&mac(&mac(format!("AWS4{secret}").as_bytes(), date), region), service), |key, part| mac(&key, part));
    // ring compares in constant time, so timing does not tell how much matched
    let sent = unhex(signed.signature);
    let verified = sent
        .is_some_and(|sent| hmac::verify(&hmac::Key::new(hmac::HMAC_SHA256, &key), to_sign.as_bytes(), &sent).is_ok());
    if verified { None } else { Some("The request signature we calculated does not match the signature you provided") }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// AWS's published example (the IAM ListUsers GET of the SigV4 documentation).
    #[test]
    fn the_documented_example_verifies() {
        let mut headers = HeaderMap::new();
        headers.insert("host", "iam.amazonaws.com".parse().unwrap());
        headers.insert("content-type", "application/x-www-form-urlencoded; charset=utf-8".parse().unwrap());
        headers.insert("x-amz-date", "20150830T123600Z".parse().unwrap());
        let auth = "Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7";
        let signed = parse(auth).unwrap();
        let uri: Uri = "/?Action=ListUsers&Version=2010-05-08".parse().unwrap();
        let now = chrono::DateTime::parse_from_rfc3339("2015-08-30T12:40:00Z").unwrap().to_utc();
        let secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
        assert_eq!(verify(&signed, secret, &Method::GET, &uri, &headers, b"", now), None);
        // a different secret, a changed query, a changed body, a stale clock: refused
        assert!(verify(&signed, "other", &Method::GET, &uri, &headers, b"", now).is_some());
        let other: Uri = "/?Action=DeleteUsers&Version=2010-05-08".parse().unwrap();
        assert!(verify(&signed, secret, &Method::GET, &other, &headers, b"", now).is_some());
        assert!(verify(&signed, secret, &Method::GET, &uri, &headers, b"x", now).is_some());
        let later = now + chrono::Duration::hours(1);
        assert!(verify(&signed, secret, &Method::GET, &uri, &headers, b"", later).unwrap().contains("expired"));
    }
}
