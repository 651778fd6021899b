//! The small traits the domain needs besides the store and WeChat: time and fresh ids.

use crate::ids::PersonId;

pub trait Clock: Send + Sync {
    fn now_millis(&self) -> i64;
    fn now_secs(&self) -> i64 {
        self.now_millis().div_euclid(1000)
    }
}

pub struct SystemClock;

impl Clock for SystemClock {
    fn now_millis(&self) -> i64 {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
    }
}

/// Any function of "now": devstack shares the simulator's clock so tests can travel in time.
impl<F: Fn() -> i64 + Send + Sync> Clock for F {
    fn now_millis(&self) -> i64 {
        self()
    }
}

pub trait Ids: Send + Sync {
    fn person(&self) -> PersonId;
    /// An unguessable token (tickets, states, nonces): 128 random bits, URL- and state-safe.
    fn token(&self) -> String;
}

pub struct RandomIds;

impl Ids for RandomIds {
    fn person(&self) -> PersonId {
        PersonId::from_uuid(uuid::Uuid::now_v7())
    }
    fn token(&self) -> String {
        uuid::Uuid::new_v4().simple().to_string()
    }
}
