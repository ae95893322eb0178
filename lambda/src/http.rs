//! HTTP events — Function URLs and API Gateway's HTTP (payload 2.0) and REST (1.0) events —
//! turned into requests for the Athena API router, and its responses into Lambda's shape.

use axum::body::Body;
use axum::http::{HeaderName, HeaderValue, Method, Request};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use tower::ServiceExt;

/// The most a response body may be: Lambda's limit for a synchronous reply.
const RESPONSE_LIMIT: usize = 6 * 1024 * 1024;

/// The request an HTTP event carries; `None` when the event is not an HTTP event.
pub fn request(event: &Value) -> Option<Result<Request<Body>, String>> {
    let context = event.get("requestContext")?;
    // payload 2.0 (Function URLs, HTTP APIs) names the method under requestContext.http;
    // REST APIs (payload 1.0) at the top
    let method = context.pointer("/http/method").or_else(|| event.get("httpMethod"))?.as_str()?;
    Some(build(event, method))
}

fn build(event: &Value, method: &str) -> Result<Request<Body>, String> {
    let method = Method::from_bytes(method.as_bytes()).map_err(|_| format!("bad HTTP method {method}"))?;
    let path = event.get("rawPath").or_else(|| event.get("path")).and_then(Value::as_str).unwrap_or("/");
    let query = event.get("rawQueryString").and_then(Value::as_str).filter(|q| !q.is_empty());
    let uri = match query {
        Some(q) => format!("{path}?{q}"),
        None => path.to_string(),
    };
    let mut builder = Request::builder().method(method).uri(&uri);
    if let Some(headers) = event.get("headers").and_then(Value::as_object) {
        for (name, value) in headers {
            let Some(value) = value.as_str() else { continue };
            let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| format!("bad header name {name}"))?;
            let value = HeaderValue::from_str(value).map_err(|_| format!("bad value for header {name}"))?;
            builder = builder.header(name, value);
        }
    }
    let body = event.get("body").and_then(Value::as_str).unwrap_or_default();
    let body = if event.get("isBase64Encoded").and_then(Value::as_bool).unwrap_or(false) {
        STANDARD.decode(body).map_err(|e| format!("the body is not base64: {e}"))?
    } else {
        body.as_bytes().to_vec()
    };
    builder.body(Body::from(body)).map_err(|e| format!("bad request {uri}: {e}"))
}

/// Sends `request` through the router and returns the response as Lambda's HTTP reply.
pub async fn call(router: axum::Router, request: Request<Body>) -> Value {
    let response = match router.oneshot(request).await {
        Ok(r) => r,
        Err(never) => match never {},
    };
    let (parts, body) = response.into_parts();
    let body = match axum::body::to_bytes(body, RESPONSE_LIMIT).await {
        Ok(b) => b,
        Err(e) => {
            return reply(500, "application/json", json!({"message": format!("response too large: {e}")}).to_string());
        }
    };
    let mut headers = serde_json::Map::new();
    for (name, value) in &parts.headers {
        if let Ok(v) = value.to_str() {
            headers.insert(name.as_str().to_string(), json!(v));
        }
    }
    let (body, encoded) = match String::from_utf8(body.to_vec()) {
        Ok(text) => (text, false),
        Err(e) => (STANDARD.encode(e.into_bytes()), true),
    };
    json!({"statusCode": parts.status.as_u16(), "headers": headers, "body": body, "isBase64Encoded": encoded})
}

/// An HTTP event glaux could not turn into a request.
pub fn bad_request(reason: &str) -> Value {
    let body = json!({"__type": "InvalidRequestException", "Message": reason}).to_string();
    reply(400, "application/x-amz-json-1.1", body)
}

/// The reply to an HTTP event the function will not serve.
pub fn refused(reason: &str) -> Value {
    let body = json!({"__type": "AccessDeniedException", "Message": reason}).to_string();
    reply(403, "application/x-amz-json-1.1", body)
}

fn reply(status: u16, content_type: &str, body: String) -> Value {
    json!({"statusCode": status, "headers": {"content-type": content_type}, "body": body, "isBase64Encoded": false})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn function_url_and_rest_events_become_requests() {
        let url = json!({
            "version": "2.0", "rawPath": "/", "rawQueryString": "a=1",
            "headers": {"x-amz-target": "AmazonAthena.ListWorkGroups"},
            "requestContext": {"http": {"method": "POST"}},
            "body": "e30=", "isBase64Encoded": true,
        });
        let r = request(&url).unwrap().unwrap();
        assert_eq!(r.method(), Method::POST);
        assert_eq!(r.uri(), "/?a=1");
        assert_eq!(r.headers()["x-amz-target"], "AmazonAthena.ListWorkGroups");
        let rest = json!({"httpMethod": "GET", "path": "/health", "requestContext": {}, "body": null});
        assert_eq!(request(&rest).unwrap().unwrap().uri(), "/health");
        // a query event is not an HTTP event
        assert!(request(&json!({"QueryString": "SELECT 1"})).is_none());
        let bad = json!({"requestContext": {"http": {"method": "POST"}}, "body": "%%%", "isBase64Encoded": true});
        assert!(request(&bad).unwrap().unwrap_err().contains("base64"));
    }
}
