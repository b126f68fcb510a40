//! Outbound notifications (docs/notifications.md): which transitions a status change is
//! ([`transitions`], each with a key that names it), what a notification says ([`event`]), the
//! body per sink kind ([`payload`]), Standard Webhooks signatures ([`signature`]), the outbox
//! kept with the rollout's state so each (transition, sink) is delivered once across restarts
//! ([`outbox`]), and the queue with retries that the shells feed ([`worker`], [`deliver`]).

pub mod config;
pub mod deliver;
pub mod event;
pub mod feed;
pub mod outbox;
pub mod payload;
pub mod signature;
pub mod sink;
pub mod transition;
pub mod worker;

pub use deliver::RetryPolicy;
pub use event::{notifications, Notification};
pub use feed::Feed;
pub use outbox::{Outbox, OutboxOps, Outcome};
pub use sink::{Sink, SinkError, SinkKind};
pub use transition::{transitions, Transition, TransitionKind};
pub use worker::{Notifier, Offer, OutboxStore};
