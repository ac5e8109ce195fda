//! What a `/metrics` scrape refreshes before rendering: the gauges that are
//! counts over the store (queue depths, the review queue), read once per
//! scrape rather than kept in step with every write. Kept apart from the
//! route so whichever listener serves `/metrics` can call it.

use super::ApiState;

/// Sets the store-derived gauges; a failed read leaves the previous values
/// (a scrape must still answer while the store is busy or failing).
pub async fn refresh_gauges(state: &ApiState) {
    let store = &state.pipeline.store;
    if let Ok((live, dead)) = store.queue_depth().await {
        state.metrics.queue_live.set(live);
        state.metrics.queue_dead.set(dead);
    }
    if let Ok((senders, held)) = store.review_depth().await {
        state.metrics.review_queue.set(senders);
        state.metrics.held_messages.set(held);
    }
}
