//! HTTP plumbing shared by the clients: sending, classifying failures, reading the channels'
//! error bodies, and waiting out throttling.

use std::error::Error as _;
use std::future::Future;
use std::time::Duration;

use reqwest::header::HeaderMap;
use reqwest::{RequestBuilder, StatusCode, Url};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::config::ClientOptions;
use crate::error::{ChannelError, Kind};
use crate::model::ChannelKind;

pub(crate) fn http_client(
    channel: ChannelKind,
    options: &ClientOptions,
) -> Result<reqwest::Client, ChannelError> {
    reqwest::Client::builder()
        .timeout(options.timeout)
        .connect_timeout(options.timeout)
        .build()
        .map_err(|e| {
            ChannelError::new(
                Kind::Misconfigured,
                channel,
                format!("cannot build the HTTP client: {}", error_chain(&e)),
            )
        })
}

pub(crate) fn base_url(channel: ChannelKind, raw: &str) -> Result<Url, ChannelError> {
    let misconfigured = |why: String| {
        ChannelError::new(
            Kind::Misconfigured,
            channel,
            format!("base URL {raw:?} {why}"),
        )
    };
    let url = Url::parse(raw).map_err(|e| misconfigured(format!("is not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.cannot_be_a_base() {
        return Err(misconfigured("must be an http(s) URL".to_owned()));
    }
    Ok(url)
}

/// The base URL with `segments` appended, each percent-encoded on its own: SKUs may hold `/`.
pub(crate) fn endpoint(
    channel: ChannelKind,
    base: &Url,
    segments: &[&str],
) -> Result<Url, ChannelError> {
    let mut url = base.clone();
    url.path_segments_mut()
        .map_err(|()| {
            ChannelError::new(
                Kind::Misconfigured,
                channel,
                format!("base URL {base} cannot take a path"),
            )
        })?
        .pop_if_empty()
        .extend(segments);
    Ok(url)
}

/// A complete HTTP answer, whatever its status.
pub(crate) struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn json<T: DeserializeOwned>(&self, channel: ChannelKind) -> Result<T, ChannelError> {
        serde_json::from_slice(&self.body).map_err(|e| {
            ChannelError::new(
                Kind::UnexpectedAnswer,
                channel,
                format!(
                    "HTTP {}: unreadable answer ({e}): {}",
                    self.status.as_u16(),
                    snippet(&self.body)
                ),
            )
        })
    }

    /// `Retry-After` in seconds. The HTTP-date form is not used by these channels.
    pub fn retry_after(&self) -> Option<Duration> {
        self.header_f64("retry-after")
            .and_then(|secs| Duration::try_from_secs_f64(secs).ok())
    }

    pub fn header_f64(&self, name: &str) -> Option<f64> {
        self.headers
            .get(name)?
            .to_str()
            .ok()?
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite() && *v >= 0.0)
    }

    /// The error this answer stands for, with the channel's own words for why.
    pub fn error(
        &self,
        channel: ChannelKind,
        names_listing: bool,
        retry_after: Option<Duration>,
    ) -> ChannelError {
        ChannelError::from_status(
            channel,
            self.status.as_u16(),
            names_listing,
            retry_after,
            &error_detail(&self.body),
        )
    }
}

/// Sends a request and reads the whole answer. The credentials the request carries are cut out
/// of the answer's body before anything reads it: a channel that echoes them (in a 401, a 500, an
/// HTML error page) must not put them into an error that is logged and published.
pub(crate) async fn send(
    channel: ChannelKind,
    request: RequestBuilder,
) -> Result<Answer, ChannelError> {
    let (client, request) = request.build_split();
    let request = request.map_err(|e| transport_error(channel, &e))?;
    let credentials = credentials_in(request.headers());
    let response = client
        .execute(request)
        .await
        .map_err(|e| transport_error(channel, &e))?;
    let status = response.status();
    let headers = response.headers().clone();
    let body = response
        .bytes()
        .await
        .map_err(|e| transport_error(channel, &e))?;
    Ok(Answer {
        status,
        headers,
        body: redact(body.to_vec(), &credentials),
    })
}

/// The headers the clients authenticate with.
const CREDENTIAL_HEADERS: [&str; 4] = [
    "authorization",
    "x-shopify-access-token",
    "x-amz-access-token",
    "wm_sec.access_token",
];
/// Shorter values are not credentials; cutting them out would only garble answers.
const MIN_CREDENTIAL_CHARS: usize = 8;
const REDACTED: &[u8] = b"[redacted]";

/// Every form in which an answer could quote the credentials of `headers`: the header value, its
/// token after the scheme, and for Basic the decoded `id:secret` and the secret alone, each also
/// as JSON escapes it. Longest first, so a value containing another is cut out whole.
fn credentials_in(headers: &HeaderMap) -> Vec<Vec<u8>> {
    let mut found: Vec<String> = Vec::new();
    for name in CREDENTIAL_HEADERS {
        for value in headers.get_all(name) {
            let Ok(value) = value.to_str() else {
                found.push(String::from_utf8_lossy(value.as_bytes()).into_owned());
                continue;
            };
            let value = value.trim();
            found.push(value.to_owned());
            let Some((scheme, token)) = value.split_once(' ') else {
                continue;
            };
            let token = token.trim();
            found.push(token.to_owned());
            if scheme.eq_ignore_ascii_case("basic")
                && let Some(decoded) = decode_base64(token)
            {
                if let Some((_, secret)) = decoded.split_once(':') {
                    found.push(secret.to_owned());
                }
                found.push(decoded);
            }
        }
    }
    let mut forms: Vec<Vec<u8>> = Vec::new();
    for value in found {
        if value.chars().count() < MIN_CREDENTIAL_CHARS {
            continue;
        }
        let escaped = serde_json::to_string(&value).unwrap_or_default();
        let escaped = escaped.trim_matches('"');
        if escaped != value {
            forms.push(escaped.as_bytes().to_vec());
        }
        forms.push(value.into_bytes());
    }
    forms.sort_by_key(|f| std::cmp::Reverse(f.len()));
    forms.dedup();
    forms
}

fn redact(mut body: Vec<u8>, credentials: &[Vec<u8>]) -> Vec<u8> {
    for credential in credentials {
        if credential.is_empty() || body.len() < credential.len() {
            continue;
        }
        let mut out = Vec::with_capacity(body.len());
        let mut at = 0;
        while at < body.len() {
            if body[at..].starts_with(credential) {
                out.extend_from_slice(REDACTED);
                at += credential.len();
            } else {
                out.push(body[at]);
                at += 1;
            }
        }
        body = out;
    }
    body
}

/// Standard base64 (as Basic authentication uses it) to text; `None` when it is not that.
fn decode_base64(text: &str) -> Option<String> {
    let value = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let digits = text.trim_end_matches('=').as_bytes();
    let mut bytes = Vec::with_capacity(digits.len() * 3 / 4);
    for group in digits.chunks(4) {
        if group.len() == 1 {
            return None;
        }
        let mut bits = 0u32;
        for (i, c) in group.iter().enumerate() {
            bits |= value(*c)? << (18 - 6 * i);
        }
        let decoded = bits.to_be_bytes();
        bytes.extend_from_slice(&decoded[1..group.len()]);
    }
    String::from_utf8(bytes).ok()
}

fn transport_error(channel: ChannelKind, err: &reqwest::Error) -> ChannelError {
    let chain = error_chain(err);
    let (kind, message) = if err.is_timeout() {
        (Kind::Timeout, format!("no answer in time: {chain}"))
    } else if err.is_builder() {
        (
            Kind::Misconfigured,
            format!("cannot build the request: {chain}"),
        )
    } else if err.is_connect() {
        (Kind::Unreachable, format!("cannot connect: {chain}"))
    } else {
        // Sent, but the connection failed before a full answer: it may or may not have applied,
        // and sending an absolute quantity again is safe.
        (
            Kind::UnexpectedAnswer,
            format!("connection failed before an answer: {chain}"),
        )
    };
    ChannelError::new(kind, channel, message)
}

/// reqwest's own message hides the cause (refused, reset, timed out); its sources say it.
fn error_chain(err: &reqwest::Error) -> String {
    let mut message = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

/// The reason in a channel's error body: Shopify's `errors` string or list, Amazon's and
/// Walmart's `errors: [{code, message}]`, eBay's `errors: [{errorId, message}]`.
pub(crate) fn error_detail(body: &[u8]) -> String {
    let Ok(json) = serde_json::from_slice::<Value>(body) else {
        return snippet(body);
    };
    match json.get("errors") {
        Some(Value::String(text)) => text.clone(),
        Some(Value::Array(items)) if !items.is_empty() => items
            .iter()
            .map(describe_error)
            .collect::<Vec<_>>()
            .join("; "),
        Some(other @ Value::Object(_)) => other.to_string(),
        _ => snippet(body),
    }
}

pub(crate) fn describe_error(item: &Value) -> String {
    let code = ["/code", "/errorId", "/extensions/code"]
        .iter()
        .find_map(|path| item.pointer(path))
        .map(|code| match code {
            Value::String(text) => text.clone(),
            other => other.to_string(),
        });
    let message = ["message", "description", "longMessage"]
        .iter()
        .find_map(|key| item.get(*key).and_then(Value::as_str));
    match (code, message) {
        (Some(code), Some(message)) => format!("{code}: {message}"),
        (Some(code), None) => code,
        (None, Some(message)) => message.to_owned(),
        (None, None) => item.to_string(),
    }
}

fn snippet(body: &[u8]) -> String {
    const MAX_CHARS: usize = 300;
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        return "(empty body)".to_owned();
    }
    let mut cut: String = text.chars().take(MAX_CHARS).collect();
    if cut.len() < text.len() {
        cut.push('…');
    }
    cut
}

/// Runs `attempt` again while the channel throttles it, waiting each time as long as the channel
/// said, at most `max_throttle_retries` times. A throttled error that is handed back always
/// carries a wait, so the caller can schedule the retry.
pub(crate) async fn retry_throttled<T, F, Fut>(
    options: &ClientOptions,
    mut attempt: F,
) -> Result<T, ChannelError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, ChannelError>>,
{
    let mut retries = 0;
    loop {
        let err = match attempt().await {
            Err(err) if err.is_throttled() => err,
            other => return other,
        };
        let wait = err.retry_after().unwrap_or(options.fallback_throttle_wait);
        if retries >= options.max_throttle_retries || wait > options.max_throttle_wait {
            return Err(err.with_retry_after(wait));
        }
        retries += 1;
        tracing::debug!(
            channel = %err.channel(),
            retries,
            wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
            "throttled; waiting as long as the channel asked"
        );
        tokio::time::sleep(wait).await;
    }
}

/// A random UUID (version 4) for correlation headers.
pub(crate) fn correlation_id() -> String {
    let bits: u128 = rand::random();
    let bits = (bits & !(0xF_u128 << 76)) | (0x4_u128 << 76);
    let bits = (bits & !(0x3_u128 << 62)) | (0x2_u128 << 62);
    let hex = format!("{bits:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// A fresh idempotency key: one per distinct request, kept across retries of that request.
pub(crate) fn random_key() -> String {
    format!("{:032x}", rand::random::<u128>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn correlation_ids_are_version_4_uuids() {
        let id = correlation_id();
        let groups: Vec<&str> = id.split('-').collect();
        assert_eq!(
            groups.iter().map(|g| g.len()).collect::<Vec<_>>(),
            [8, 4, 4, 4, 12]
        );
        assert!(groups[2].starts_with('4'));
        assert!(matches!(
            groups[3].chars().next(),
            Some('8' | '9' | 'a' | 'b')
        ));
        assert_ne!(id, correlation_id());
    }

    #[test]
    fn error_details_speak_each_channels_shape() {
        let detail = |v: Value| error_detail(v.to_string().as_bytes());
        assert_eq!(
            detail(serde_json::json!({"errors": "[API] Invalid API key or access token"})),
            "[API] Invalid API key or access token"
        );
        assert_eq!(
            detail(
                serde_json::json!({"errors": [{"code": "NOT_FOUND", "message": "gone", "details": ""}]})
            ),
            "NOT_FOUND: gone"
        );
        assert_eq!(
            detail(serde_json::json!({"errors": [{"errorId": 25710, "message": "no such item"}]})),
            "25710: no such item"
        );
        assert_eq!(error_detail(b"<html>oops</html>"), "<html>oops</html>");
        assert_eq!(error_detail(b""), "(empty body)");
    }

    #[test]
    fn credentials_are_cut_out_of_answers_in_every_form_they_are_quoted() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-shopify-access-token",
            "shpat_a\"b/c1234".parse().unwrap(),
        );
        // base64("client-1:s3cret-value")
        headers.insert(
            "authorization",
            "Basic Y2xpZW50LTE6czNjcmV0LXZhbHVl".parse().unwrap(),
        );
        let credentials = credentials_in(&headers);
        let body = br#"{"errors":"bad shpat_a\"b/c1234 and shpat_a"b/c1234, Basic Y2xpZW50LTE6czNjcmV0LXZhbHVl, client-1:s3cret-value, s3cret-value"}"#;
        let text = String::from_utf8(redact(body.to_vec(), &credentials)).unwrap();
        for leaked in ["shpat_a", "Y2xpZW50", "s3cret-value"] {
            assert!(!text.contains(leaked), "{text}");
        }
        assert!(
            text.starts_with(r#"{"errors":"bad [redacted] and"#),
            "{text}"
        );
        assert_eq!(
            decode_base64("Y2xpZW50LTE6czNjcmV0LXZhbHVl").as_deref(),
            Some("client-1:s3cret-value")
        );
        assert_eq!(decode_base64("YQ"), Some("a".to_owned()));
        assert_eq!(decode_base64("!!"), None);
    }

    #[test]
    fn endpoints_encode_each_segment() {
        let base = Url::parse("http://127.0.0.1:9/").unwrap_or_else(|e| panic!("{e}"));
        let url = endpoint(ChannelKind::Ebay, &base, &["items", "A/B C"])
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(url.as_str(), "http://127.0.0.1:9/items/A%2FB%20C");
    }
}
