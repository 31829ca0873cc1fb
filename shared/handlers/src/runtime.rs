//! The local HTTP server standing in for API Gateway: it hands each request to the function
//! that serves its route, through the same entry point as Lambda ([`Function::answer_http`]).

use std::net::SocketAddr;
use std::sync::Arc;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;

use crate::functions::Function;
use crate::http_api::{HttpAnswer, SHOPIFY_WEBHOOK_PATH, webhook_refused};

/// The local server's webhook route: the declared length is checked first and the body is read
/// through a limit, so an oversized body is refused before it is read whole.
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
    let declared = req
        .headers()
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if let Some(refused) = webhook_refused(method, declared) {
        return refused;
    }
    let (parts, body) = req.into_parts();
    let limited = http_body_util::Limited::new(body, stockguard_domain::shopify::MAX_BODY_BYTES);
    match limited.collect().await {
        Ok(body) => {
            let path = parts.uri.path();
            webhooks
                .answer_http(method, path, &parts.headers, &body.to_bytes())
                .await
        }
        Err(_) => webhook_refused(method, Some(usize::MAX)).unwrap_or(HttpAnswer {
            status: 400,
            body: serde_json::json!({"error": "invalid_payload", "message": "the body could not be read"}),
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
                            let (parts, body) = req.into_parts();
                            let body = body
                                .collect()
                                .await
                                .map(|b| b.to_bytes())
                                .unwrap_or_default();
                            let answer =
                                api.answer_http(&method, &path, &parts.headers, &body).await;
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
