//! Outbound notifications (issue 15, item 3) — only the first, pure part so far: which
//! transitions a status change is ([`transitions`]), each with a key that names it uniquely
//! (revision, kind, step), so a sender can deliver it once per sink and record the key in the
//! state. Sinks, the queue, retries and signatures are not written yet.

pub mod transition;

pub use transition::{transitions, Transition, TransitionKind};
