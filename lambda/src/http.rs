//! HTTP events — Function URLs, API Gateway's HTTP (payload 2.0) and REST (1.0) events, ALB —
//! read with lambda_http's event types, sent through the Athena API router, and answered in
//! the shape the event's source expects (cookies, multi-value headers included).

use std::convert::Infallible;

use axum::body::Body;
use axum::http::{Request, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use lambda_http::request::LambdaRequest;
use lambda_http::{Adapter, Context, LambdaEvent, RequestExt, Service};
use serde_json::{Value, json};
use tower::ServiceExt;

/// The most a response body may be: Lambda's limit for a synchronous reply.
const RESPONSE_LIMIT: usize = 6 * 1024 * 1024;

/// Whether `event` comes from an HTTP source. A direct query event never has a request
/// context naming a method (lambda_http's types would read almost any object as an event).
pub fn is_http(event: &Value) -> bool {
    event.get("requestContext").is_some_and(|context| {
        context.pointer("/http/method").or_else(|| event.get("httpMethod")).is_some_and(Value::is_string)
    })
}

/// Answers an HTTP event through `router`, as the Lambda reply its source expects.
pub async fn call(router: axum::Router, event: Value, context: Context) -> Value {
    let request = match read(event) {
        Ok(r) => r,
        Err(reason) => return bad_request(&reason),
    };
    let service = tower::service_fn(move |request: lambda_http::Request| forward(router.clone(), request));
    let mut adapter = Adapter::from(service);
    let Ok(response) = adapter.call(LambdaEvent::new(request, context)).await;
    serde_json::to_value(response).unwrap_or_else(|e| bad_request(&format!("the reply could not be written: {e}")))
}

/// The event as lambda_http's request type, refusing what its conversion would panic on.
fn read(mut event: Value) -> Result<LambdaRequest, String> {
    // REST and ALB events carry each header twice: in `headers` (its last value) and in
    // `multiValueHeaders` (all of them); lambda_http lets the first replace the second
    // a REST event names its method twice; hand-made events often only once
    if let Some(method) = event.get("httpMethod").cloned()
        && let Some(context) = event.get_mut("requestContext").and_then(Value::as_object_mut)
    {
        context.entry("httpMethod").or_insert(method);
    }
    if let Some(multi) = event.get("multiValueHeaders").and_then(Value::as_object) {
        let names: Vec<String> = multi.keys().map(|k| k.to_ascii_lowercase()).collect();
        if let Some(single) = event.get_mut("headers").and_then(Value::as_object_mut) {
            single.retain(|k, _| !names.contains(&k.to_ascii_lowercase()));
        }
    }
    if event.get("isBase64Encoded").and_then(Value::as_bool) == Some(true)
        && let Some(body) = event.get("body").and_then(Value::as_str)
        && let Err(e) = STANDARD.decode(body)
    {
        return Err(format!("the body is not base64: {e}"));
    }
    if let Some(host) = event.pointer("/headers/host").and_then(Value::as_str)
        && url::Host::parse(host.rsplit_once(':').map_or(host, |(name, _)| name)).is_err()
    {
        return Err(format!("bad Host header {host:?}"));
    }
    check_url(&event)?;
    serde_json::from_value(event).map_err(|e| format!("not an HTTP event glaux can read: {e}"))
}

/// Refuses a path or query string that lambda_http would build into a URL and then panic on
/// (it unwraps the URL it makes of them).
fn check_url(event: &Value) -> Result<(), String> {
    for field in ["rawPath", "path"] {
        if let Some(path) = event.get(field).and_then(Value::as_str) {
            let url = (path.is_empty() || path.starts_with('/'))
                .then(|| url::Url::parse(&format!("http://localhost{path}")).ok())
                .flatten();
            let Some(url) = url else { return Err(format!("bad {field} {path:?}")) };
            if url.path().parse::<axum::http::Uri>().is_err() {
                return Err(format!("bad {field} {path:?}"));
            }
        }
    }
    if let Some(query) = event.get("rawQueryString").and_then(Value::as_str)
        && format!("/?{query}").parse::<axum::http::Uri>().is_err()
    {
        return Err(format!("bad rawQueryString {query:?}"));
    }
    Ok(())
}

/// One request through the router: the path as the client sent it (a REST API's stage is
/// not part of the Athena API's paths), the body buffered within Lambda's reply limit.
async fn forward(
    router: axum::Router,
    request: lambda_http::Request,
) -> Result<Response<lambda_http::Body>, Infallible> {
    let path = request.raw_http_path().to_string();
    let (mut parts, body) = request.into_parts();
    let uri = match parts.uri.query() {
        Some(q) if !q.is_empty() => format!("{path}?{q}"),
        _ => path,
    };
    match uri.parse() {
        Ok(uri) => parts.uri = uri,
        Err(e) => {
            return Ok(reply(
                400,
                &json!({"__type": "InvalidRequestException", "Message": format!("bad path {uri}: {e}")}),
            ));
        }
    }
    let request = Request::from_parts(parts, Body::from(body.to_vec()));
    let Ok(response) = router.oneshot(request).await;
    let (parts, body) = response.into_parts();
    let body = match axum::body::to_bytes(body, RESPONSE_LIMIT).await {
        Ok(b) => b,
        Err(e) => return Ok(reply(500, &json!({"message": format!("response too large: {e}")}))),
    };
    Ok(Response::from_parts(parts, lambda_http::Body::from(body.to_vec())))
}

fn reply(status: u16, body: &Value) -> Response<lambda_http::Body> {
    let mut response = Response::new(lambda_http::Body::from(body.to_string()));
    *response.status_mut() =
        axum::http::StatusCode::from_u16(status).unwrap_or(axum::http::StatusCode::INTERNAL_SERVER_ERROR);
    response.headers_mut().insert("content-type", axum::http::HeaderValue::from_static("application/json"));
    response
}

/// An HTTP event glaux could not turn into a request.
pub fn bad_request(reason: &str) -> Value {
    let body = json!({"__type": "InvalidRequestException", "Message": reason}).to_string();
    lambda_reply(400, body)
}

/// The reply to an HTTP event the function will not serve.
pub fn refused(reason: &str) -> Value {
    let body = json!({"__type": "AccessDeniedException", "Message": reason}).to_string();
    lambda_reply(403, body)
}

fn lambda_reply(status: u16, body: String) -> Value {
    json!({"statusCode": status, "headers": {"content-type": "application/x-amz-json-1.1"}, "body": body, "isBase64Encoded": false})
}

#[cfg(test)]
mod tests {
    use axum::routing::any;

    use super::*;

    /// A router that answers with what it was sent, and two cookies.
    fn echo() -> axum::Router {
        axum::Router::new().fallback(any(|request: Request<Body>| async move {
            let (parts, body) = request.into_parts();
            let body = axum::body::to_bytes(body, 1 << 20).await.unwrap();
            let seen = json!({
                "method": parts.method.as_str(),
                "uri": parts.uri.to_string(),
                "cookie": parts.headers.get("cookie").and_then(|v| v.to_str().ok()),
                "accept": parts.headers.get_all("accept").iter().filter_map(|v| v.to_str().ok()).collect::<Vec<_>>(),
                "body": String::from_utf8_lossy(&body),
            });
            Response::builder()
                .header("content-type", "application/json")
                .header("set-cookie", "a=1")
                .header("set-cookie", "b=2")
                .body(Body::from(seen.to_string()))
                .unwrap()
        }))
    }

    async fn send(event: Value) -> (Value, Value) {
        assert!(is_http(&event));
        let reply = call(echo(), event, Context::default()).await;
        let seen = serde_json::from_str(reply["body"].as_str().unwrap_or("null")).unwrap_or(Value::Null);
        (reply, seen)
    }

    #[tokio::test]
    async fn function_url_events_keep_cookies_both_ways() {
        let (reply, seen) = send(json!({
            "version": "2.0", "rawPath": "/", "rawQueryString": "a=1",
            "cookies": ["s=1", "t=2"],
            "headers": {"x-amz-target": "AmazonAthena.ListWorkGroups", "host": "abc.lambda-url.us-east-1.on.aws"},
            "requestContext": {"http": {"method": "POST"}, "stage": "$default"},
            "body": "e30=", "isBase64Encoded": true,
        }))
        .await;
        assert_eq!(reply["statusCode"], 200);
        assert_eq!(seen["method"], "POST");
        assert_eq!(seen["uri"], "/?a=1");
        assert_eq!(seen["cookie"], "s=1; t=2");
        assert_eq!(seen["body"], "{}");
        assert_eq!(reply["cookies"], json!(["a=1", "b=2"]));
    }

    #[tokio::test]
    async fn rest_events_keep_multi_value_headers_and_drop_the_stage() {
        let (reply, seen) = send(json!({
            "httpMethod": "GET", "path": "/health", "resource": "/{proxy+}",
            "headers": {"accept": "text/csv"},
            "multiValueHeaders": {"accept": ["text/csv", "application/json"]},
            "requestContext": {"stage": "prod", "httpMethod": "GET"}, "body": null,
        }))
        .await;
        assert_eq!(reply["statusCode"], 200);
        assert_eq!(seen["uri"], "/health");
        assert_eq!(seen["accept"], json!(["text/csv", "application/json"]));
        assert_eq!(reply["multiValueHeaders"]["set-cookie"], json!(["a=1", "b=2"]));
    }

    #[tokio::test]
    async fn urls_lambda_http_would_panic_on_are_refused() {
        // found by the generated events (fuzz.rs): lambda_http unwraps the URL it builds
        for (field, value) in
            [("rawPath", "no-slash"), ("rawPath", "/a b\u{1}"), ("rawQueryString", "a b"), ("path", "x")]
        {
            let mut event = json!({"requestContext": {"http": {"method": "GET"}}, "rawPath": "/"});
            event[field] = json!(value);
            let reply = call(echo(), event, Context::default()).await;
            assert_eq!(reply["statusCode"], 400, "{field} {value:?}: {reply}");
            assert!(reply["body"].as_str().unwrap().contains("bad "), "{reply}");
        }
    }

    #[tokio::test]
    async fn bad_events_are_refused_not_panicked_on() {
        // a query event is not an HTTP event
        assert!(!is_http(&json!({"QueryString": "SELECT 1"})));
        let bad = json!({"requestContext": {"http": {"method": "POST"}}, "rawPath": "/", "body": "%%%", "isBase64Encoded": true});
        let reply = call(echo(), bad, Context::default()).await;
        assert_eq!(reply["statusCode"], 400);
        assert!(reply["body"].as_str().unwrap().contains("base64"), "{reply}");
        let host = json!({"requestContext": {"http": {"method": "GET"}}, "rawPath": "/", "headers": {"host": "a b"}});
        let reply = call(echo(), host, Context::default()).await;
        assert_eq!(reply["statusCode"], 400, "{reply}");
    }
}
