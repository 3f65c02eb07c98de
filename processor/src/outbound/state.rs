//! One `outbound` partition's pending deliveries, as kept between attempts and checkpointed:
//! entry `d\0<delivery id>` → the delivery (JSON).

use super::deliver::{self, Answer, Request};
use super::{MAX_ATTEMPTS, OutboundSettings};
use crate::pipeline::StateChanges;
use chrono::{DateTime, Utc};
use clicktrail_schemas::Catalog;
use clicktrail_schemas::Topic;
use clicktrail_schemas::outbound::{DeliveryRow, Macros, OutboundRecord, StoredAt};
use clicktrail_schemas::rows::Source;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};
use std::collections::{HashMap, HashSet};

/// A delivery not yet done: one message to one target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pending {
    pub delivery_id: String,
    pub message_id: String,
    pub advertiser_id: String,
    pub event: String,
    /// `webhook` or `postback`.
    pub target_kind: String,
    pub target_id: String,
    /// The URL of the last attempt (at first the endpoint's URL, or the postback's expanded
    /// URL, when the message was read): every attempt goes to the target's URL of the moment.
    pub url: String,
    /// A postback's macro values, to expand its template of the moment; none for a webhook or
    /// a replay.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub macros: Option<Macros>,
    /// The webhook body (empty for a postback).
    pub body: String,
    /// Attempts made so far.
    pub attempts: u32,
    /// When the next attempt is due.
    pub next_at: DateTime<Utc>,
    /// Not before this position is stored.
    pub after: Option<StoredAt>,
    pub replay: bool,
    /// The message's position on `outbound`.
    pub partition: u32,
    pub offset: u64,
}

/// One partition's pending deliveries and position.
#[derive(Default)]
pub struct Partition {
    /// The next offset to read.
    pub next_offset: u64,
    /// Whether anything changed since the last checkpoint.
    pub dirty: bool,
    pending: HashMap<String, Pending>,
    puts: HashSet<String>,
    deletes: HashSet<String>,
}

fn entry_key(delivery_id: &str) -> Vec<u8> {
    let mut k = b"d\0".to_vec();
    k.extend_from_slice(delivery_id.as_bytes());
    k
}

/// `dlv_` and 24 hex digits of a SHA-256 of the parts: the same delivery gets the same id
/// when its message is read again.
fn delivery_id(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0]);
    }
    let hex: String = h.finalize()[..12]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("dlv_{hex}")
}

impl Partition {
    /// The partition as checkpointed.
    pub fn restore(next_offset: u64, entries: Vec<(Vec<u8>, Vec<u8>)>) -> Partition {
        let mut p = Partition {
            next_offset,
            ..Partition::default()
        };
        for (_, v) in entries {
            match serde_json::from_slice::<Pending>(&v) {
                Ok(d) => {
                    p.pending.insert(d.delivery_id.clone(), d);
                }
                Err(e) => tracing::error!(error = %e, "a pending delivery could not be read"),
            }
        }
        p
    }

    /// Pending deliveries.
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    fn put(&mut self, d: Pending) {
        self.deletes.remove(&d.delivery_id);
        self.puts.insert(d.delivery_id.clone());
        self.pending.insert(d.delivery_id.clone(), d);
        self.dirty = true;
    }

    fn delete(&mut self, id: &str) {
        self.pending.remove(id);
        self.puts.remove(id);
        self.deletes.insert(id.to_string());
        self.dirty = true;
    }

    /// Turns a message read at `offset` of `partition` into its deliveries: one per target
    /// the catalog has for it now, or the one target of a replay.
    pub fn accept(&mut self, r: &OutboundRecord, partition: u32, offset: u64, catalog: &Catalog) {
        let base = |kind: &str, target: &str, url: String, body: String, id: String| Pending {
            delivery_id: id,
            message_id: r.message_id.clone(),
            advertiser_id: r.advertiser_id.clone(),
            event: r.event.as_str().to_string(),
            target_kind: kind.to_string(),
            target_id: target.to_string(),
            url,
            macros: None,
            body,
            attempts: 0,
            next_at: Utc::now(),
            after: r.after,
            replay: r.replay.is_some(),
            partition,
            offset,
        };
        if let Some(replay) = &r.replay {
            let id = delivery_id(&[&replay.delivery_id, "replay", &offset.to_string()]);
            self.put(base(
                &replay.target_kind,
                &replay.target_id,
                replay.url.clone(),
                replay.body.clone(),
                id,
            ));
            return;
        }
        let body = json!({
            "id": r.message_id,
            "type": r.event.as_str(),
            "created_at": r.created_at,
            "advertiser_id": r.advertiser_id,
            "data": r.data,
        })
        .to_string();
        for w in catalog.webhook_targets(&r.advertiser_id, r.event) {
            let id = delivery_id(&[&r.message_id, &w.id]);
            if !self.pending.contains_key(&id) {
                self.put(base("webhook", &w.id, w.url.clone(), body.clone(), id));
            }
        }
        if let Some((campaign, influencer, macros)) = &r.credited {
            for p in catalog.postback_targets(&r.advertiser_id, campaign, influencer) {
                let id = delivery_id(&[&r.message_id, &p.id]);
                if !self.pending.contains_key(&id) {
                    let url = deliver::expand(&p.url, macros);
                    let mut d = base("postback", &p.id, url, String::new(), id);
                    d.macros = Some(macros.clone());
                    self.put(d);
                }
            }
        }
    }

    /// The topics whose committed positions some pending delivery waits on.
    pub fn waiting_on(&self) -> impl Iterator<Item = Topic> + '_ {
        self.pending
            .values()
            .filter_map(|d| d.after.map(|a| a.topic))
    }

    /// The deliveries due at `now` whose message is stored by `committed`.
    pub fn due<'a>(
        &'a self,
        now: DateTime<Utc>,
        committed: &'a HashMap<Topic, Vec<Option<u64>>>,
    ) -> impl Iterator<Item = &'a Pending> + 'a {
        self.pending.values().filter(move |d| {
            d.next_at <= now
                && d.after.is_none_or(|a| {
                    committed
                        .get(&a.topic)
                        .and_then(|c| c.get(a.partition as usize).copied().flatten())
                        .is_some_and(|next| next > a.offset)
                })
        })
    }

    /// Records how an attempt of `d` ended: its log row; the delivery is done (delivered, or
    /// out of attempts) or scheduled again.
    pub fn record(&mut self, mut d: Pending, answer: Answer, s: &OutboundSettings) -> DeliveryRow {
        let now = Utc::now();
        d.attempts += 1;
        let (outcome, next) = if answer.delivered() {
            ("delivered", None)
        } else if d.attempts >= MAX_ATTEMPTS || answer.give_up {
            ("failed", None)
        } else {
            let wait = deliver::backoff(s.retry_base, d.attempts);
            let at = now + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::hours(6));
            ("retrying", Some(at))
        };
        let row = DeliveryRow {
            delivery_id: d.delivery_id.clone(),
            message_id: d.message_id.clone(),
            advertiser_id: d.advertiser_id.clone(),
            target_kind: d.target_kind.clone(),
            target_id: d.target_id.clone(),
            event: d.event.clone(),
            url: d.url.clone(),
            attempt: d.attempts,
            at: now,
            status: answer.status.map(i64::from),
            outcome: outcome.to_string(),
            error: answer.error,
            response: answer.response,
            next_attempt_at: next,
            replay: d.replay,
            body: d.body.clone(),
            source: Source {
                partition: d.partition,
                offset: d.offset,
            },
        };
        tracing::info!(delivery = %d.delivery_id, message = %d.message_id, target = %d.target_id,
            attempt = d.attempts, status = ?row.status, outcome, "delivery attempt");
        match next {
            Some(at) => {
                d.next_at = at;
                self.put(d);
            }
            None => self.delete(&d.delivery_id.clone()),
        }
        row
    }

    /// The entries to put and delete since the last call.
    pub fn take_changes(&mut self) -> StateChanges {
        let puts = std::mem::take(&mut self.puts)
            .into_iter()
            .filter_map(|id| {
                let d = self.pending.get(&id)?;
                Some((
                    entry_key(&id),
                    serde_json::to_vec(d).expect("a delivery serializes"),
                ))
            })
            .collect();
        let deletes = std::mem::take(&mut self.deletes)
            .into_iter()
            .map(|id| entry_key(&id))
            .collect();
        StateChanges { puts, deletes }
    }
}

/// One attempt of `d`, to its target's URL of the moment (the postback's template expanded
/// again), and that URL; a webhook is signed with its endpoint's secret, derived now. A target
/// switched off or removed meanwhile gets no more attempts.
pub async fn attempt(
    client: &reqwest::Client,
    d: &Pending,
    catalog: &Catalog,
    s: &OutboundSettings,
) -> (Answer, String) {
    let gone = |what: &str| Answer {
        status: None,
        response: None,
        error: Some(format!("the {what} was switched off or removed")),
        give_up: true,
    };
    let req = if d.target_kind == "webhook" {
        let Some(endpoint) = catalog.webhooks.get(&d.target_id).filter(|w| w.active) else {
            return (gone("endpoint"), d.url.clone());
        };
        Request::Webhook {
            url: endpoint.url.clone(),
            body: d.body.clone(),
            secret: endpoint.secret(&s.signing_key),
        }
    } else {
        let Some(postback) = catalog.postbacks.get(&d.target_id).filter(|p| p.active) else {
            return (gone("postback"), d.url.clone());
        };
        Request::Postback {
            url: match &d.macros {
                Some(m) => deliver::expand(&postback.url, m),
                None => d.url.clone(),
            },
        }
    };
    let url = match &req {
        Request::Webhook { url, .. } | Request::Postback { url } => url.clone(),
    };
    let headers = [
        ("idempotency-key", d.message_id.clone()),
        ("x-clicktrail-delivery", d.delivery_id.clone()),
        ("x-clicktrail-attempt", (d.attempts + 1).to_string()),
        ("x-clicktrail-replay", d.replay.to_string()),
    ];
    (
        deliver::attempt(client, &req, &headers, s.timeout).await,
        url,
    )
}
