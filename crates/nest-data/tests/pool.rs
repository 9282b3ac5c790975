//! The pool's contract: claims are exclusive, waiting claimers are served in arrival order, a timeout gives up
//! without losing a row, and every row comes back.

use std::collections::HashSet;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nest_data::{DataSet, Lease, Pool, RowId, Segment};
use rand::SeedableRng;

/// A pool over `rows` rows named `u0`, `u1`, ...
fn pool(rows: usize, segment: Segment) -> Arc<Pool> {
    let mut csv = String::from("name\n");
    for i in 0..rows {
        csv.push_str(&format!("u{i}\n"));
    }
    let set = DataSet::from_csv("users.csv", csv.as_bytes()).unwrap();
    Arc::new(Pool::new("users", Arc::new(set), segment))
}

fn multi_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(4).enable_all().build().unwrap()
}

/// Yields until `pool` has `n` claimers waiting; bounded, so a bug fails the test instead of hanging it.
async fn until_waiting(pool: &Pool, n: usize) {
    for _ in 0..1_000_000 {
        if pool.waiting() == n {
            return;
        }
        tokio::task::yield_now().await;
    }
    panic!("{} claimers waiting, expected {n}", pool.waiting());
}

/// Polls `future` once: `Some(output)` if it was ready.
async fn poll_once<F: Future + Unpin>(future: &mut F) -> Option<F::Output> {
    tokio::time::timeout(Duration::ZERO, future).await.ok()
}

#[test]
fn no_row_is_ever_held_by_two_claimers() {
    const ROWS: usize = 10;
    const TASKS: usize = 200;
    const ROUNDS: usize = 20;
    let pool = pool(ROWS, Segment::WHOLE);
    let rt = multi_thread();
    rt.block_on(async {
        // Hold every row first, so that the contenders all have to queue; then let them fight.
        let mut first: Vec<Lease> = Vec::new();
        for _ in 0..ROWS {
            first.push(pool.claim(None).await.unwrap());
        }
        let holders = Arc::new(Mutex::new(HashSet::<RowId>::new()));
        let used = Arc::new(Mutex::new(HashSet::<RowId>::new()));
        let mut tasks = Vec::new();
        for _ in 0..TASKS {
            let (pool, holders, used) = (pool.clone(), holders.clone(), used.clone());
            tasks.push(tokio::spawn(async move {
                for _ in 0..ROUNDS {
                    let lease = pool.claim(None).await.expect("no timeout was given");
                    assert!(holders.lock().unwrap().insert(lease.row()), "{:?} is held twice", lease.row());
                    used.lock().unwrap().insert(lease.row());
                    tokio::task::yield_now().await;
                    assert!(holders.lock().unwrap().remove(&lease.row()));
                    drop(lease);
                }
            }));
        }
        until_waiting(&pool, TASKS).await;
        drop(first);
        for task in tasks {
            task.await.unwrap();
        }
        assert_eq!(used.lock().unwrap().len(), ROWS, "every row was used");
    });
    let stats = pool.stats();
    let claims = (ROWS + TASKS * ROUNDS) as u64;
    assert_eq!((stats.claims, stats.releases), (claims, claims));
    assert_eq!(stats.max_held, ROWS as u64);
    assert!(stats.waits >= TASKS as u64, "{stats:?}");
    assert_eq!((stats.timeouts, pool.held(), pool.waiting()), (0, 0, 0));
}

#[test]
fn waiting_claimers_are_served_in_arrival_order() {
    const TASKS: usize = 50;
    let pool = pool(1, Segment::WHOLE);
    let rt = multi_thread();
    let served = Arc::new(Mutex::new(Vec::new()));
    rt.block_on(async {
        let only = pool.claim(None).await.unwrap();
        let mut tasks = Vec::new();
        for i in 0..TASKS {
            let (claimer, served) = (pool.clone(), served.clone());
            tasks.push(tokio::spawn(async move {
                let lease = claimer.claim(None).await.unwrap();
                served.lock().unwrap().push(i);
                drop(lease);
            }));
            // Claimer i is in line before claimer i + 1 arrives.
            until_waiting(&pool, i + 1).await;
        }
        drop(only);
        for task in tasks {
            task.await.unwrap();
        }
    });
    assert_eq!(*served.lock().unwrap(), (0..TASKS).collect::<Vec<_>>());
}

#[tokio::test(flavor = "current_thread")]
async fn a_released_row_goes_to_the_claimer_in_line_not_to_a_newcomer() {
    let pool = pool(1, Segment::WHOLE);
    let held = pool.claim(None).await.unwrap();
    let mut in_line = Box::pin(pool.claim(None));
    assert!(poll_once(&mut in_line).await.is_none(), "every row is held: it waits");
    drop(held);
    assert!(pool.claim(Some(Duration::ZERO)).await.is_none(), "the newcomer does not jump the line");
    assert!(in_line.await.is_some());
}

#[tokio::test(start_paused = true)]
async fn a_timeout_returns_none_and_counts_as_exhausted() {
    let pool = pool(2, Segment::WHOLE);
    let (a, b) = (pool.claim(None).await.unwrap(), pool.claim(None).await.unwrap());
    assert!(pool.claim(Some(Duration::from_secs(5))).await.is_none());
    let stats = pool.stats();
    assert_eq!((stats.claims, stats.waits, stats.timeouts), (2, 1, 1));
    assert_eq!(stats.longest_wait, Duration::from_secs(5));
    assert_eq!(pool.waiting(), 0, "the claimer left the line");
    drop((a, b));
    assert_eq!(pool.held(), 0);
    let again = (pool.claim(None).await, pool.claim(None).await);
    assert!(again.0.is_some() && again.1.is_some(), "both rows are free again");
}

#[tokio::test(flavor = "current_thread")]
async fn a_claimer_that_gives_up_after_a_row_reached_it_gives_the_row_back() {
    let pool = pool(1, Segment::WHOLE);
    let held = pool.claim(None).await.unwrap();
    let mut waiter = Box::pin(pool.claim(Some(Duration::from_secs(3600))));
    assert!(poll_once(&mut waiter).await.is_none());
    drop(held); // handed to the waiter, which has not looked yet
    assert_eq!(pool.held(), 1, "the row is on its way to the waiter");
    drop(waiter); // it gives up (a timeout, or its VU was cancelled)
    assert_eq!(pool.held(), 0, "the row came back");
    let stats = pool.stats();
    assert_eq!((stats.claims, stats.releases, stats.timeouts), (1, 1, 0), "a cancelled wait is no timeout");
    assert!(pool.claim(Some(Duration::ZERO)).await.is_some());
}

#[tokio::test(start_paused = true)]
async fn timed_out_claimers_under_contention_never_lose_rows() {
    let pool = pool(3, Segment::WHOLE);
    let mut tasks = Vec::new();
    for i in 0..60u64 {
        let pool = pool.clone();
        tasks.push(tokio::spawn(async move {
            // Alternate patient and impatient claimers; holders keep their row for a while.
            let timeout = if i % 2 == 0 { None } else { Some(Duration::from_millis(i)) };
            if let Some(lease) = pool.claim(timeout).await {
                tokio::time::sleep(Duration::from_millis(7)).await;
                drop(lease);
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let stats = pool.stats();
    assert_eq!(pool.held(), 0);
    assert_eq!(stats.claims, stats.releases);
    assert_eq!(stats.claims + stats.timeouts, 60, "{stats:?}");
    assert!(stats.timeouts > 0 && stats.max_held == 3, "{stats:?}");
}

#[tokio::test(flavor = "current_thread")]
async fn next_walks_the_share_in_order_and_random_stays_in_it() {
    let pool = pool(10, Segment::new(1, 2).unwrap());
    assert_eq!(pool.len(), 5);
    let walked: Vec<usize> = (0..7).map(|_| pool.next().unwrap().0).collect();
    assert_eq!(walked, [5, 6, 7, 8, 9, 5, 6]);
    let mut rng = rand::rngs::SmallRng::seed_from_u64(1);
    for _ in 0..100 {
        assert!((5..10).contains(&pool.random(&mut rng).unwrap().0));
    }
    let mut claimed: Vec<usize> = Vec::new();
    let mut leases = Vec::new();
    while let Some(lease) = pool.claim(Some(Duration::ZERO)).await {
        claimed.push(lease.row().0);
        leases.push(lease);
    }
    assert_eq!(claimed, [5, 6, 7, 8, 9], "a segment claims only from its own share");
}

#[tokio::test(flavor = "current_thread")]
async fn an_empty_pool_gives_nothing_at_once() {
    let empty = pool(0, Segment::WHOLE);
    assert!(empty.is_empty());
    assert!(empty.claim(None).await.is_none());
    assert_eq!(empty.next(), None);
    assert_eq!(empty.random(&mut rand::rng()), None);
}
