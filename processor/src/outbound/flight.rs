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
