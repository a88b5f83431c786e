//! Idempotency keys: a request that carries one acts at most once, however often it is sent and
//! whichever instance serves it. Its first answer (status and body, a refusal too) is written by
//! the transaction of its effect (for a batched request, its batch's), and a retry with the same
//! key is answered from that record instead of acting again.
//!
//! A retry while the first is still running on this instance is refused as in flight. On another
//! instance both may run, but the database's primary key on the record lets one commit: the other
//! writes nothing and answers the winner's record (`StoreError::KeyTaken`, resolved by the service).
//!
//! The answer is rendered by whoever gives it (the HTTP layer): a request carries its key with the
//! function that turns its outcome into the reply, so the record holds exactly what was answered.

use std::collections::HashSet;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use coupon_core::{CouponError, Timestamp};

use crate::StoreError;

/// A caller's idempotency key and what it was sent with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key {
    /// Whose key: the caller's identity (a token's subject). Two callers never share a key.
    pub scope: String,
    /// The key as the client sent it.
    pub key: String,
    /// A digest of the request (method, path, query and body): the same key with another request
    /// is refused, not answered.
    pub fingerprint: String,
    /// When the request arrived: what the record's age, and so its purge, is counted from.
    pub at: Timestamp,
}

/// An answer as it was given: what a retry gets again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    /// The body, JSON.
    pub body: String,
}

type Render<T> = dyn Fn(Result<&T, &CouponError>) -> Reply + Send + Sync;

/// A request's key with how its outcome is answered.
pub struct Keyed<T> {
    key: Arc<Key>,
    render: Arc<Render<T>>,
}

impl<T> Clone for Keyed<T> {
    fn clone(&self) -> Self {
        Keyed {
            key: self.key.clone(),
            render: self.render.clone(),
        }
    }
}

impl<T> fmt::Debug for Keyed<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyed").field("key", &self.key).finish_non_exhaustive()
    }
}

impl<T: 'static> Keyed<T> {
    pub fn new(key: Key, render: impl Fn(Result<&T, &CouponError>) -> Reply + Send + Sync + 'static) -> Self {
        Keyed {
            key: Arc::new(key),
            render: Arc::new(render),
        }
    }

    pub fn key(&self) -> &Key {
        &self.key
    }

    /// The record of this request's outcome.
    pub(crate) fn record(&self, outcome: Result<&T, &CouponError>) -> Record {
        Record {
            key: self.key.clone(),
            reply: (self.render)(outcome),
        }
    }

    /// The same key, for a script whose outcome `U` holds the answer `T`.
    pub(crate) fn through<U: 'static>(self, part: fn(&U) -> &T) -> Keyed<U> {
        let render = self.render;
        Keyed {
            key: self.key,
            render: Arc::new(move |outcome: Result<&U, &CouponError>| render(outcome.map(part))),
        }
    }
}

/// A key's first answer, as a transaction writes it.
pub(crate) struct Record {
    pub key: Arc<Key>,
    pub reply: Reply,
}

/// A request of a batch, which may carry a key: what the batch's records are read from.
pub(crate) trait KeyedRequest {
    /// What the request answers when it succeeds.
    type Outcome: 'static;
    fn keyed(&self) -> Option<&Keyed<Self::Outcome>>;

    fn key(&self) -> Option<&Key> {
        self.keyed().map(Keyed::key)
    }
}

/// The records of a batch's keyed requests, from their answers.
pub(crate) fn records<R: KeyedRequest>(batch: &[R], answers: &[Result<R::Outcome, CouponError>]) -> Vec<Record> {
    batch
        .iter()
        .zip(answers)
        .filter_map(|(req, answer)| Some(req.keyed()?.record(answer.as_ref())))
        .collect()
}

/// What a key's record says of a request that comes with it again.
pub(crate) fn replay(key: &Key, found: Option<(String, Reply)>) -> Result<(), StoreError> {
    match found {
        None => Ok(()),
        Some((fingerprint, reply)) if fingerprint == key.fingerprint => Err(StoreError::Replayed(reply)),
        Some(_) => Err(StoreError::KeyReused),
    }
}

/// The keys of the requests running on this instance.
#[derive(Debug, Default)]
pub(crate) struct InFlight(Mutex<HashSet<(String, String)>>);

impl InFlight {
    /// Marks the key running until the guard drops, unless it already is.
    pub(crate) fn enter(&self, key: &Key) -> Result<Running<'_>, StoreError> {
        let id = (key.scope.clone(), key.key.clone());
        let mut running = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if !running.insert(id.clone()) {
            return Err(StoreError::KeyInFlight);
        }
        Ok(Running { set: self, id })
    }
}

/// A key marked running.
pub(crate) struct Running<'a> {
    set: &'a InFlight,
    id: (String, String),
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.set
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.id);
    }
}
