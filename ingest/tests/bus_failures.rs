//! What an admin sees when the bus fails under a request: a read that failed is reported as a
//! failed read, never as a write that could not be made durable.

use async_trait::async_trait;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use clicktrail_bus::{
    BusError, CatalogView, Consumer, ConsumerFactory, Delivery, Message, Producer, TailReader,
};
use clicktrail_ingest::{IngestConfig, IngestState};
use clicktrail_schemas::Topic;
use std::sync::Arc;
use tower::ServiceExt;

/// A bus whose storage has failed: every read and write is refused.
struct FailedBus;

#[async_trait]
impl Producer for FailedBus {
    async fn send_batch(
        &self,
        _topic: Topic,
        _records: Vec<(Vec<u8>, Vec<u8>)>,
    ) -> Result<Vec<Delivery>, BusError> {
        Err(BusError::Storage("disk failed".into()))
    }

    fn enqueue(&self, _topic: Topic, _key: Vec<u8>, _payload: Vec<u8>) -> Result<(), BusError> {
        Err(BusError::Storage("disk failed".into()))
    }

    async fn flush(&self) -> Result<(), BusError> {
        Ok(())
    }
}

#[async_trait]
impl TailReader for FailedBus {
    async fn tail(&self, _topic: Topic, _n: usize) -> Result<Vec<Message>, BusError> {
        Err(BusError::Storage("disk failed".into()))
    }
}

#[async_trait]
impl ConsumerFactory for FailedBus {
    async fn consumer(&self, _group: &str, _topic: Topic) -> Result<Box<dyn Consumer>, BusError> {
        Err(BusError::Storage("disk failed".into()))
    }

    async fn reader(&self, _topic: Topic) -> Result<Box<dyn Consumer>, BusError> {
        Err(BusError::Storage("disk failed".into()))
    }

    async fn end_offsets(&self, _topic: Topic) -> Result<Vec<u64>, BusError> {
        Err(BusError::Storage("disk failed".into()))
    }

    async fn committed(&self, _group: &str, _topic: Topic) -> Result<Vec<Option<u64>>, BusError> {
        Err(BusError::Storage("disk failed".into()))
    }
}

const TOKEN: &str = "an-admin-token-of-some-length";

fn app() -> axum::Router {
    clicktrail_ingest::router(IngestState {
        config: Arc::new(IngestConfig {
            admin_token: TOKEN.into(),
            public_url: "http://127.0.0.1:1".into(),
            max_body_bytes: 1 << 20,
            processor_group: "processor".into(),
            signing_key: "a-signing-key-of-some-length-0123456789".into(),
            session_ttl_secs: 3600,
        }),
        catalog: CatalogView::new(),
        producer: Arc::new(FailedBus),
        tail: Arc::new(FailedBus),
        consumers: Arc::new(FailedBus),
        logins: Default::default(),
    })
}

/// The admin's GET of `path`: its status, whether it says when to retry, and its message.
async fn admin_get(path: &str) -> (StatusCode, bool, String) {
    let resp = app()
        .oneshot(
            Request::get(path)
                .header("authorization", format!("Bearer {TOKEN}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    let status = resp.status();
    let retry = resp.headers().contains_key("retry-after");
    let body = axum::body::to_bytes(resp.into_body(), 1 << 16)
        .await
        .unwrap();
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
    (status, retry, body["message"].as_str().unwrap().to_string())
}

#[tokio::test]
async fn a_failed_dead_letter_read_is_not_reported_as_a_failed_write() {
    let (status, retry, message) = admin_get("/api/v1/admin/dead-letter").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(retry);
    assert!(message.contains("could not be read"), "{message}");
    assert!(!message.contains("durable"), "{message}");
}

#[tokio::test]
async fn a_failed_lag_read_is_not_reported_as_a_failed_write() {
    let (status, retry, message) = admin_get("/api/v1/admin/pipeline").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(retry);
    assert!(message.contains("could not be read"), "{message}");
    assert!(!message.contains("durable"), "{message}");
}
