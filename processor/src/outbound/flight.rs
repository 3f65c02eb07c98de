//! The attempts in flight: each runs on its own task, so that a slow or hanging receiver
//! holds up nothing but its own deliveries. At most [`MAX_IN_FLIGHT`] run at once, and at most
//! [`MAX_PER_TARGET`] for one endpoint or postback, so that one receiver cannot take every
//! slot.

use super::OutboundSettings;
use super::deliver::Answer;
use super::state::{self, Partition, Pending};
use clicktrail_schemas::{Catalog, Topic};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use tokio::task::{Id, JoinSet};

/// Attempts running at once at most.
pub const MAX_IN_FLIGHT: usize = 64;
/// Attempts running at once for one endpoint or postback at most.
pub const MAX_PER_TARGET: usize = 4;

/// An attempt that ended: its partition, its delivery, the answer and the URL it went to.
pub type Done = (u32, Pending, Answer, String);

/// The attempts running.
#[derive(Default)]
pub struct Flight {
    set: JoinSet<Done>,
    tasks: HashMap<Id, (String, String)>,
    running: HashSet<String>,
    per_target: HashMap<String, usize>,
}

impl Flight {
    fn release(&mut self, delivery_id: &str, target_id: &str) {
        self.running.remove(delivery_id);
        if let Some(n) = self.per_target.get_mut(target_id) {
            *n -= 1;
            if *n == 0 {
                self.per_target.remove(target_id);
            }
        }
    }

    /// The attempts that ended since the last call. An attempt whose task failed is not
    /// reported: its delivery stays pending and is attempted again.
    pub fn finished(&mut self) -> Vec<Done> {
        let mut out = Vec::new();
        while let Some(ended) = self.set.try_join_next_with_id() {
            let (id, done) = match ended {
                Ok((id, done)) => (id, Some(done)),
                Err(e) => {
                    tracing::error!(error = %e, "a delivery attempt failed to run");
                    (e.id(), None)
                }
            };
            if let Some((delivery, target)) = self.tasks.remove(&id) {
                self.release(&delivery, &target);
            }
            out.extend(done);
        }
        out
    }

    /// Starts the due deliveries of `parts` (stored by `committed`) that are not running, as
    /// far as the limits allow.
    pub fn start(
        &mut self,
        parts: &HashMap<u32, Partition>,
        committed: &HashMap<Topic, Vec<Option<u64>>>,
        client: &reqwest::Client,
        catalog: &Arc<Catalog>,
        settings: &OutboundSettings,
    ) {
        let now = chrono::Utc::now();
        for (&p, part) in parts {
            for d in part.due(now, committed) {
                if self.running.len() >= MAX_IN_FLIGHT {
                    return;
                }
                let busy = self.per_target.get(&d.target_id).copied().unwrap_or(0);
                if self.running.contains(&d.delivery_id) || busy >= MAX_PER_TARGET {
                    continue;
                }
                self.running.insert(d.delivery_id.clone());
                *self.per_target.entry(d.target_id.clone()).or_default() += 1;
                let (d, client, catalog, settings) =
                    (d.clone(), client.clone(), catalog.clone(), settings.clone());
                let (delivery, target) = (d.delivery_id.clone(), d.target_id.clone());
                let handle = self.set.spawn(async move {
                    let (answer, url) = state::attempt(&client, &d, &catalog, &settings).await;
                    (p, d, answer, url)
                });
                self.tasks.insert(handle.id(), (delivery, target));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outbound::state::Partition;
    use chrono::Utc;
    use clicktrail_schemas::CatalogChange;
    use clicktrail_schemas::catalog::{Advertiser, Status, WebhookEndpoint, WebhookEvent};
    use clicktrail_schemas::outbound::OutboundRecord;
    use std::time::{Duration, Instant};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A receiver on a free loopback port that answers 200 at once, or never.
    async fn receiver(answers: bool) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let mut held = Vec::new();
            loop {
                let (mut conn, _) = listener.accept().await.unwrap();
                if answers {
                    tokio::spawn(async move {
                        let mut buf = [0u8; 8192];
                        let _ = conn.read(&mut buf).await;
                        let _ = conn
                            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                            .await;
                    });
                } else {
                    held.push(conn);
                }
            }
        });
        url
    }

    fn message(n: usize, event: WebhookEvent) -> OutboundRecord {
        OutboundRecord {
            v: 1,
            message_id: format!("msg_{n}"),
            event,
            advertiser_id: "adv".into(),
            created_at: Utc::now(),
            data: serde_json::json!({}),
            credited: None,
            after: None,
            replay: None,
        }
    }

    /// A receiver that never answers holds [`MAX_PER_TARGET`] attempts, and another endpoint's
    /// deliveries go out meanwhile.
    #[tokio::test]
    async fn a_hanging_receiver_holds_up_only_its_own_deliveries() {
        let (hanging, answering) = (receiver(false).await, receiver(true).await);
        let mut catalog = Catalog::default();
        let now = Utc::now();
        let advertiser = Advertiser {
            id: "adv".into(),
            name: "A".into(),
            status: Status::Active,
            require_signature: false,
            browser_purchases_count: false,
            created_at: now,
        };
        catalog
            .apply(&CatalogChange::AdvertiserUpserted { advertiser })
            .unwrap();
        for (id, url, event) in [
            ("whk_hang", &hanging, WebhookEvent::ConversionAttributed),
            ("whk_fast", &answering, WebhookEvent::ConversionUnattributed),
        ] {
            let endpoint = WebhookEndpoint {
                id: id.into(),
                advertiser_id: "adv".into(),
                url: url.clone(),
                events: vec![event],
                active: true,
                created_at: now,
            };
            catalog
                .apply(&CatalogChange::WebhookUpserted { endpoint })
                .unwrap();
        }
        let mut part = Partition::restore(0, Vec::new());
        for n in 0..10 {
            part.accept(
                &message(n, WebhookEvent::ConversionAttributed),
                0,
                n as u64,
                &catalog,
            );
        }
        part.accept(
            &message(99, WebhookEvent::ConversionUnattributed),
            0,
            99,
            &catalog,
        );
        let parts = HashMap::from([(0, part)]);
        let settings = OutboundSettings {
            timeout: Duration::from_secs(60),
            ..OutboundSettings::new("g", "key")
        };
        let catalog = Arc::new(catalog);
        let mut flight = Flight::default();
        flight.start(
            &parts,
            &HashMap::new(),
            &reqwest::Client::new(),
            &catalog,
            &settings,
        );
        assert_eq!(flight.per_target.get("whk_hang"), Some(&MAX_PER_TARGET));
        let started = Instant::now();
        let done = loop {
            let done = flight.finished();
            if !done.is_empty() || started.elapsed() > Duration::from_secs(10) {
                break done;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        assert_eq!(done.len(), 1, "{done:?}");
        assert_eq!(done[0].1.target_id, "whk_fast");
        assert!(done[0].2.delivered(), "{:?}", done[0].2);
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(
            flight.running.len(),
            MAX_PER_TARGET,
            "the hanging ones still run"
        );
    }
}
