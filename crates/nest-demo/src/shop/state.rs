//! The shop's in-memory state: bearer tokens with their carts, and cookie
//! sessions.
//!
//! Both maps are sharded behind std mutexes (keys are random, so the low bits
//! pick a shard) and every critical section is a map lookup or insert: no lock
//! is ever held across an `.await`. Both are bounded: when a shard is full its
//! oldest entry is evicted, so a long benchmark that logs in on every
//! iteration cannot grow memory without bound.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::rng::IdGen;

/// Most tokens (and, separately, sessions) kept before evicting the oldest.
pub(crate) const MAX_ENTRIES: usize = 1_000_000;

/// Most units of one item a cart line can hold.
const MAX_LINE_QTY: u32 = 1_000_000;

const SHARDS: usize = 16;

/// What a login hands out.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Login {
    /// The bearer token for `/cart` and `/checkout`.
    pub(crate) token: u128,
    /// The `session` cookie value for `/whoami`.
    pub(crate) session: u128,
}

/// One logged-in token: who it belongs to and what is in its cart.
struct Account {
    user: Arc<str>,
    /// `(item id, quantity)`, one line per item.
    cart: Vec<(u32, u32)>,
}

/// Tokens, carts and sessions.
pub(crate) struct ShopState {
    accounts: Sharded<Account>,
    sessions: Sharded<Arc<str>>,
    ids: IdGen,
}

impl ShopState {
    /// Empty state bounded at [`MAX_ENTRIES`] tokens and sessions.
    pub(crate) fn new() -> Self {
        ShopState::with_capacity(MAX_ENTRIES)
    }

    /// Empty state keeping about `capacity` tokens and sessions (rounded to
    /// whole shards, at least one per shard).
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        ShopState { accounts: Sharded::new(capacity), sessions: Sharded::new(capacity), ids: IdGen::new() }
    }

    /// Logs `user` in: a new token (with an empty cart) and a new session.
    pub(crate) fn login(&self, user: &str) -> Login {
        let user: Arc<str> = Arc::from(user);
        let login = Login { token: self.ids.next_u128(), session: self.ids.next_u128() };
        self.sessions.insert(login.session, Arc::clone(&user));
        self.accounts.insert(login.token, Account { user, cart: Vec::new() });
        login
    }

    /// A new order id.
    pub(crate) fn order_id(&self) -> u128 {
        self.ids.next_u128()
    }

    /// The user of a session cookie, if it is known.
    pub(crate) fn session_user(&self, session: u128) -> Option<Arc<str>> {
        self.sessions.with(session, |user| Arc::clone(user))
    }

    /// The user of a bearer token, if it is known.
    pub(crate) fn token_user(&self, token: u128) -> Option<Arc<str>> {
        self.accounts.with(token, |account| Arc::clone(&account.user))
    }

    /// Adds `qty` of `item` to the token's cart; returns the units now in
    /// the cart, or `None` for an unknown token.
    pub(crate) fn add_to_cart(&self, token: u128, item: u32, qty: u32) -> Option<u64> {
        self.accounts.with(token, |account| {
            match account.cart.iter_mut().find(|(id, _)| *id == item) {
                Some((_, line)) => *line = line.saturating_add(qty).min(MAX_LINE_QTY),
                None => account.cart.push((item, qty.min(MAX_LINE_QTY))),
            }
            account.cart.iter().map(|(_, q)| u64::from(*q)).sum()
        })
    }

    /// Empties the token's cart and returns what was in it, or `None` for
    /// an unknown token.
    pub(crate) fn take_cart(&self, token: u128) -> Option<Vec<(u32, u32)>> {
        self.accounts.with(token, |account| std::mem::take(&mut account.cart))
    }
}

/// A bounded map from random `u128` keys, split into mutex-guarded shards.
struct Sharded<V> {
    shards: Box<[Mutex<Shard<V>>]>,
    per_shard: usize,
}

struct Shard<V> {
    map: HashMap<u128, V>,
    /// Keys in insertion order, for evicting the oldest.
    order: VecDeque<u128>,
}

impl<V> Sharded<V> {
    fn new(capacity: usize) -> Self {
        Sharded {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard { map: HashMap::new(), order: VecDeque::new() })).collect(),
            per_shard: (capacity / SHARDS).max(1),
        }
    }

    fn shard(&self, key: u128) -> MutexGuard<'_, Shard<V>> {
        // Keys are random, so their low bits spread evenly. A poisoned shard
        // only means a panic elsewhere; its maps are still consistent.
        self.shards[(key as usize) % SHARDS].lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn insert(&self, key: u128, value: V) {
        let mut shard = self.shard(key);
        while shard.map.len() >= self.per_shard {
            let Some(oldest) = shard.order.pop_front() else {
                break;
            };
            shard.map.remove(&oldest);
        }
        if shard.map.insert(key, value).is_none() {
            shard.order.push_back(key);
        }
    }

    fn with<R>(&self, key: u128, f: impl FnOnce(&mut V) -> R) -> Option<R> {
        self.shard(key).map.get_mut(&key).map(f)
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.shards.iter().map(|s| s.lock().unwrap_or_else(PoisonError::into_inner).map.len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_cart_checkout() {
        let state = ShopState::new();
        let login = state.login("ada");
        assert_eq!(state.session_user(login.session).as_deref(), Some("ada"));
        assert_eq!(state.token_user(login.token).as_deref(), Some("ada"));
        assert_eq!(state.session_user(login.token), None);
        assert_eq!(state.add_to_cart(login.token, 3, 2), Some(2));
        assert_eq!(state.add_to_cart(login.token, 3, 1), Some(3));
        assert_eq!(state.add_to_cart(login.token, 4, 1), Some(4));
        assert_eq!(state.take_cart(login.token), Some(vec![(3, 3), (4, 1)]));
        assert_eq!(state.take_cart(login.token), Some(vec![]));
        assert_eq!(state.add_to_cart(login.session, 1, 1), None);
        assert_eq!(state.take_cart(12345), None);
    }

    #[test]
    fn bounded_by_evicting_oldest() {
        let state = ShopState::with_capacity(SHARDS * 2);
        let logins: Vec<Login> = (0..1000).map(|i| state.login(&format!("u{i}"))).collect();
        assert!(state.accounts.len() <= SHARDS * 2);
        assert!(state.sessions.len() <= SHARDS * 2);
        // The newest login always survives; the first one is long gone.
        let last = logins[logins.len() - 1];
        assert_eq!(state.token_user(last.token).as_deref(), Some("u999"));
        assert_eq!(state.token_user(logins[0].token), None);
    }

    #[test]
    fn line_quantity_is_capped() {
        let state = ShopState::new();
        let login = state.login("bob");
        state.add_to_cart(login.token, 1, u32::MAX);
        assert_eq!(state.add_to_cart(login.token, 1, u32::MAX), Some(u64::from(MAX_LINE_QTY)));
    }
}
