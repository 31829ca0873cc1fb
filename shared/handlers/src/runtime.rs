//! Entry points for the functions' `main`s, and the local HTTP server for the reservations API.

use std::net::SocketAddr;
use std::sync::Arc;

use aws_lambda_events::event::sqs::SqsEvent;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use lambda_runtime::{LambdaEvent, service_fn};

use crate::batch::handle_batch;
use crate::channel_sync::ChannelSync;
use crate::deps::Deps;
use crate::http_api::{
    HttpAnswer, MAX_API_BODY_BYTES, SHOPIFY_WEBHOOK_PATH, route, too_large, webhook_refused,
};
use crate::shopify_webhooks::{ShopifyWebhooks, WebhookHeaders};

/// `main` of an inbound-event function: one SQS-driven handler for `detail_type`.
pub async fn run_inbound_function(detail_type: &'static str) -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let deps = Deps::from_env().await?;
    let deps = &deps;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        // Boxed: the handler's future is deep, and the runtime nests it further.
        Ok::<_, lambda_runtime::Error>(
            Box::pin(handle_batch(deps, detail_type, event.payload)).await,
        )
    }))
    .await
}

/// `main` of a channel sync function: the channel is named by `STOCKGUARD_CHANNEL`.
pub async fn run_channel_sync_function() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let name = std::env::var("STOCKGUARD_CHANNEL")
        .map_err(|_| "environment variable STOCKGUARD_CHANNEL is required")?;
    let channel = stockguard_domain::ChannelName::parse(&name)?;
    let deps = Deps::from_env().await?;
    let sync = ChannelSync::new(deps, channel);
    let sync = &sync;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        let (response, report) = Box::pin(sync.handle_batch(event.payload)).await;
        tracing::info!(?report, "sync batch done");
        Ok::<_, lambda_runtime::Error>(response)
    }))
    .await
}

/// `main` of the Amazon notifications function: SP-API notifications from their SQS queue.
pub async fn run_amazon_notifications_function() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let deps = Deps::from_env().await?;
    let notifications = crate::amazon_notifications::AmazonNotifications::new(deps);
    let notifications = &notifications;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        Ok::<_, lambda_runtime::Error>(Box::pin(notifications.handle_batch(event.payload)).await)
    }))
    .await
}

/// `main` of the compensation function: `OversellDetected` from its SQS queue.
pub async fn run_compensation_function() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let deps = Deps::from_env().await?;
    let compensation = crate::compensation::Compensation::new(deps);
    let compensation = &compensation;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        Ok::<_, lambda_runtime::Error>(Box::pin(compensation.handle_batch(event.payload)).await)
    }))
    .await
}

/// `main` of the scheduled expiry sweeper. It stops early enough to finish inside the invocation.
pub async fn run_expiry_function() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let deps = Deps::from_env().await?;
    let deps = &deps;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<serde_json::Value>| async move {
        let left = event.context.deadline().duration_since(std::time::SystemTime::now()).unwrap_or_default();
        let budget = left.saturating_sub(std::time::Duration::from_secs(5));
        let report = Box::pin(crate::reservations::expire_lapsed(deps, budget)).await?;
        tracing::info!(?report, "expiry sweep done");
        Ok::<_, lambda_runtime::Error>(serde_json::json!({"expired": report.expired, "already_settled": report.already_settled}))
    }))
    .await
}

/// `main` of the scheduled reconciliation. Stops a minute before Lambda's deadline; the report
/// says where the next run resumes.
pub async fn run_reconcile_function() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let deps = Deps::from_env().await?;
    let deps = &deps;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<serde_json::Value>| async move {
        let left = event.context.deadline().duration_since(std::time::SystemTime::now()).unwrap_or_default();
        let syncs = crate::reconcile::channel_syncs(deps).await?;
        let report = Box::pin(crate::reconcile::reconcile_all(&syncs, left.saturating_sub(std::time::Duration::from_secs(60)))).await;
        tracing::info!(?report, "reconciliation done");
        Ok::<_, lambda_runtime::Error>(serde_json::json!({
            "checked": report.checked, "drift": report.drift.len(), "drift_units": report.drift_units,
            "errors": report.errors, "resume_after": report.resume_after,
        }))
    }))
    .await
}

/// `main` of the scheduled dynamic-buffer recompute.
pub async fn run_buffer_recompute_function() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let deps = Deps::from_env().await?;
    let recompute = crate::buffers::BufferRecompute::from_env(deps)?;
    let recompute = &recompute;
    lambda_runtime::run(service_fn(move |_: LambdaEvent<serde_json::Value>| async move {
        let report = Box::pin(recompute.run(crate::deps::now_ms())).await;
        tracing::info!(?report, "buffer recompute done");
        Ok::<_, lambda_runtime::Error>(serde_json::json!({
            "skus_recomputed": report.skus_recomputed, "buffers_changed": report.buffers_changed,
            "channels_assessed": report.channels_assessed, "errors": report.errors,
        }))
    }))
    .await
}

/// `main` of the reservations API function behind API Gateway.
pub async fn run_reservations_api() -> Result<(), lambda_http::Error> {
    lambda_http::tracing::init_default_subscriber();
    let deps = Deps::from_env().await?;
    let deps = &deps;
    lambda_http::run(lambda_http::service_fn(
        move |req: lambda_http::Request| async move {
            // API Gateway has already read the body; it is measured before it is parsed.
            let answer = match too_large(Some(req.body().len()), MAX_API_BODY_BYTES) {
                Some(refused) => refused,
                None => {
                    let (method, path) = (req.method().as_str(), req.uri().path());
                    route(deps, method, path, req.body().as_ref()).await
                }
            };
            Ok::<_, lambda_http::Error>(to_response(answer)?.map(lambda_http::Body::from))
        },
    ))
    .await
}

/// `main` of the Shopify webhook function, the one route of the API without IAM auth.
pub async fn run_shopify_webhooks() -> Result<(), lambda_http::Error> {
    lambda_http::tracing::init_default_subscriber();
    let deps = Deps::from_env().await?;
    let webhooks = ShopifyWebhooks::from_env(deps)?;
    let webhooks = &webhooks;
    lambda_http::run(lambda_http::service_fn(
        move |req: lambda_http::Request| async move {
            // API Gateway has already read the body (10 MB at most); it is measured before use.
            let answer = match webhook_refused(req.method().as_str(), Some(req.body().len())) {
                Some(refused) => refused,
                None => {
                    let headers = WebhookHeaders::from_map(req.headers());
                    webhooks.handle(&headers, req.body().as_ref()).await
                }
            };
            Ok::<_, lambda_http::Error>(to_response(answer)?.map(lambda_http::Body::from))
        },
    ))
    .await
}

/// The local server's webhook route: an oversized body is refused before it is read whole.
async fn serve_webhook(
    webhooks: Option<&ShopifyWebhooks>,
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
    let headers = WebhookHeaders::from_map(req.headers());
    match read_limited(req, stockguard_domain::shopify::MAX_BODY_BYTES).await {
        Ok(body) => webhooks.handle(&headers, &body).await,
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

fn to_response(answer: HttpAnswer) -> Result<http::Response<String>, http::Error> {
    http::Response::builder()
        .status(answer.status)
        .header("content-type", "application/json")
        .body(answer.body.to_string())
}

/// Serves the reservations API on `addr` (the local runtime's stand-in for API Gateway) until the
/// task is dropped. Returns the bound address (pass port 0 for a free one).
/// `webhooks` serves `POST /v1/webhooks/shopify` as its own function does behind the same API.
pub async fn serve_reservations_api(
    deps: Deps,
    webhooks: Option<Arc<ShopifyWebhooks>>,
    addr: SocketAddr,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let deps = Arc::new(deps);
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let deps = deps.clone();
            let webhooks = webhooks.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(
                    move |req: hyper::Request<hyper::body::Incoming>| {
                        let deps = deps.clone();
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
                            let answer = match read_limited(req, MAX_API_BODY_BYTES).await {
                                Ok(body) => route(&deps, &method, &path, &body).await,
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
