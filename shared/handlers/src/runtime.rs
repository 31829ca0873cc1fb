//! The local HTTP server standing in for API Gateway: it hands each request to the function
//! that serves its route, through the same entry point as Lambda ([`Function::answer_http`]).

use std::net::SocketAddr;
use std::sync::Arc;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;

use crate::functions::Function;
use crate::http_api::{
    HttpAnswer, MAX_API_BODY_BYTES, SHOPIFY_WEBHOOK_PATH, too_large, webhook_refused,
};

/// The local server's webhook route: an oversized body is refused before it is read whole.
async fn serve_webhook(
    webhooks: Option<&Function>,
    method: &str,
    req: hyper::Request<hyper::body::Incoming>,
) -> HttpAnswer {
    let Some(webhooks) = webhooks else {
        return HttpAnswer {
            status: 404,
            body: serde_json::json!({"error": "not_found", "message": "webhooks are not served here"}),
        };
    };
    if let Some(refused) = webhook_refused(method, None) {
        return refused;
    }
    let (path, headers) = (req.uri().path().to_owned(), req.headers().clone());
    match read_limited(req, stockguard_domain::shopify::MAX_BODY_BYTES).await {
        Ok(body) => webhooks.answer_http(method, &path, &headers, &body).await,
        Err(refused) => refused,
    }
}

/// Reads a request's body, refusing with 413 one whose declared length is over `max` before
/// reading anything, and one that turns out longer as soon as `max` bytes have been read.
async fn read_limited(
    req: hyper::Request<hyper::body::Incoming>,
    max: usize,
) -> Result<Bytes, HttpAnswer> {
    let declared = req
        .headers()
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if let Some(refused) = too_large(declared, max) {
        return Err(refused);
    }
    match http_body_util::Limited::new(req.into_body(), max)
        .collect()
        .await
    {
        Ok(body) => Ok(body.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            Err(too_large(Some(usize::MAX), max).expect("over any limit"))
        }
        Err(_) => Err(HttpAnswer {
            status: 400,
            body: serde_json::json!({"error": "invalid_request", "message": "the body could not be read"}),
        }),
    }
}

pub(crate) fn to_response(answer: HttpAnswer) -> Result<http::Response<String>, http::Error> {
    http::Response::builder()
        .status(answer.status)
        .header("content-type", "application/json")
        .body(answer.body.to_string())
}

/// Serves the reservations API function `api` on `addr` (the local runtime's stand-in for API
/// Gateway) until the task is dropped. Returns the bound address (pass port 0 for a free one).
/// `webhooks`, the Shopify webhook function, serves `POST /v1/webhooks/shopify` behind the same
/// API.
pub async fn serve_reservations_api(
    api: Arc<Function>,
    webhooks: Option<Arc<Function>>,
    addr: SocketAddr,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let api = api.clone();
            let webhooks = webhooks.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(
                    move |req: hyper::Request<hyper::body::Incoming>| {
                        let api = api.clone();
                        let webhooks = webhooks.clone();
                        async move {
                            let method = req.method().as_str().to_owned();
                            let path = req.uri().path().to_owned();
                            if path.trim_end_matches('/') == SHOPIFY_WEBHOOK_PATH {
                                let answer = serve_webhook(webhooks.as_deref(), &method, req).await;
                                let response = to_response(answer).unwrap_or_default();
                                return Ok::<_, std::convert::Infallible>(
                                    response.map(|b| Full::new(Bytes::from(b))),
                                );
                            }
                            let headers = req.headers().clone();
                            let answer = match read_limited(req, MAX_API_BODY_BYTES).await {
                                Ok(body) => api.answer_http(&method, &path, &headers, &body).await,
                                Err(refused) => refused,
                            };
                            let response = to_response(answer).unwrap_or_default();
                            Ok::<_, std::convert::Infallible>(
                                response.map(|b| Full::new(Bytes::from(b))),
                            )
                        }
                    },
                );
                let io = hyper_util::rt::TokioIo::new(stream);
                if let Err(e) = hyper::server::conn::http1::Builder::new()
                    .serve_connection(io, service)
                    .await
                {
                    tracing::debug!(error = %e, "reservations API connection ended");
                }
            });
        }
    });
    Ok((bound, task))
}
