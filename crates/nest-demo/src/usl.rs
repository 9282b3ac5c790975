//! The USL mode of the hello target: a server whose throughput follows the Universal Scalability Law with known
//! σ, κ and service time, the ground truth that `nest scale` is tested against.
//!
//! A request that finds `n` requests in flight (itself included) is answered S·(1 + σ(n−1) + κn(n−1)) after it
//! arrived, so a closed loop of N users sees X(N) = N/R(N) = λN/(1 + σ(N−1) + κN(N−1)) with λ = 1/S. The serial
//! part is real: each request holds one global lock for σS, so no load can push the throughput past 1/(σS). The
//! lock is ideal: a request reserves its turn (the lock's next free instant, advanced by σS under a mutex) instead
//! of being woken to take it, so the hand-over costs nothing and a busy machine's wake-up latency cannot make the
//! lock the bottleneck. The wait behind the others' serial parts, σS(n−1), is charged as the USL assumes (every
//! other request's serial part ahead of this one), which a bare lock only reaches at saturation; the coherency
//! delay κS·n(n−1) grows with the requests in flight. A request waits once, on the demo's precise timer thread,
//! until the later of its response time and the end of its turn: no spinning, no blocked runtime thread.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::timer::Timer;

/// A USL target: contention σ, coherency κ and the service time of one request alone.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct UslModel {
    /// Contention: the serialised fraction of the service time, in [0, 1).
    pub sigma: f64,
    /// Coherency: the crosstalk cost per pair of requests in flight, in [0, 1).
    pub kappa: f64,
    /// The service time of a request alone (1/λ).
    pub service: Duration,
}

impl UslModel {
    /// Parses `SIGMA,KAPPA,SERVICE_MS`, e.g. `0.05,0.001,10`.
    pub fn parse(text: &str) -> Result<UslModel, String> {
        let parts: Vec<&str> = text.split(',').map(str::trim).collect();
        let [sigma, kappa, service] = parts.as_slice() else {
            return Err(format!("`{text}`: expected SIGMA,KAPPA,SERVICE_MS, e.g. 0.05,0.001,10"));
        };
        let number = |what: &str, v: &str| v.parse::<f64>().map_err(|_| format!("{what} `{v}` is not a number"));
        let (sigma, kappa, ms) = (number("SIGMA", sigma)?, number("KAPPA", kappa)?, number("SERVICE_MS", service)?);
        for (what, v) in [("SIGMA", sigma), ("KAPPA", kappa)] {
            if !(0.0..1.0).contains(&v) {
                return Err(format!("{what} {v} must lie in [0, 1)"));
            }
        }
        if !(ms > 0.0 && ms <= 60_000.0) {
            return Err(format!("SERVICE_MS {ms} must be above 0 and at most 60000"));
        }
        Ok(UslModel { sigma, kappa, service: Duration::from_secs_f64(ms / 1000.0) })
    }

    /// The response time of a request that finds `n` requests in flight, itself included.
    pub fn response_time(&self, n: usize) -> Duration {
        let n = n.max(1) as f64;
        self.service.mul_f64(1.0 + self.sigma * (n - 1.0) + self.kappa * n * (n - 1.0))
    }

    /// The part of each request served under the global lock: σS.
    pub fn serial(&self) -> Duration {
        self.service.mul_f64(self.sigma)
    }

    /// The throughput, in requests per second, that `n` closed-loop users without think time see.
    pub fn throughput(&self, n: usize) -> f64 {
        n as f64 / self.response_time(n).as_secs_f64()
    }
}

/// The shared state of a USL server: the model, the in-flight count, the global lock and the timer.
pub(crate) struct UslState {
    model: UslModel,
    in_flight: AtomicUsize,
    /// The global lock: the instant it is next free.
    lock: Mutex<Instant>,
    timer: Arc<Timer>,
}

/// Counts a request in flight until dropped (also when hyper drops an unfinished response).
struct InFlight<'a>(&'a AtomicUsize);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl UslState {
    /// The state of a server following `model`, waiting on `timer`.
    pub(crate) fn new(model: UslModel, timer: Arc<Timer>) -> Arc<UslState> {
        Arc::new(UslState { model, in_flight: AtomicUsize::new(0), lock: Mutex::new(Instant::now()), timer })
    }

    /// Serves one request: its turn under the lock, and its response time; it waits for the later of the two.
    pub(crate) async fn serve(&self) {
        let arrival = Instant::now();
        let n = self.in_flight.fetch_add(1, Ordering::AcqRel) + 1;
        let _counted = InFlight(&self.in_flight);
        let turn_ends = {
            let mut free = self.lock.lock().unwrap_or_else(PoisonError::into_inner);
            *free = (*free).max(arrival) + self.model.serial();
            *free
        };
        let due = (arrival + self.model.response_time(n)).max(turn_ends);
        if due > Instant::now() {
            // An error means the server is shutting down: answer anyway.
            let _ = self.timer.at(due).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sigma_kappa_and_the_service_time() {
        let m = UslModel::parse("0.05, 0.001,10").unwrap();
        assert_eq!((m.sigma, m.kappa, m.service), (0.05, 0.001, Duration::from_millis(10)));
        assert!(UslModel::parse("0.05,0.001").unwrap_err().contains("SIGMA,KAPPA,SERVICE_MS"));
        assert!(UslModel::parse("1.5,0.001,10").unwrap_err().contains("[0, 1)"));
        assert!(UslModel::parse("0.05,x,10").unwrap_err().contains("KAPPA `x`"));
        assert!(UslModel::parse("0.05,0.001,0").unwrap_err().contains("above 0"));
    }

    #[test]
    fn response_time_and_throughput_follow_the_usl() {
        let m = UslModel { sigma: 0.05, kappa: 0.001, service: Duration::from_millis(10) };
        assert_eq!(m.response_time(1), Duration::from_millis(10));
        // 10 ms × (1 + 0.05·31 + 0.001·32·31) = 35.42 ms.
        assert_eq!(m.response_time(32), Duration::from_micros(35_420));
        assert_eq!(m.serial(), Duration::from_micros(500));
        let usl = |n: f64| 100.0 * n / (1.0 + 0.05 * (n - 1.0) + 0.001 * n * (n - 1.0));
        for n in [1, 4, 16, 31, 64] {
            assert!((m.throughput(n) - usl(n as f64)).abs() < 1e-9, "{n}");
        }
        // The peak is at N* = √((1 − σ)/κ) ≈ 30.8.
        assert!(m.throughput(31) > m.throughput(24) && m.throughput(31) > m.throughput(40));
    }

    #[tokio::test]
    async fn requests_in_flight_slow_each_other_down() {
        let m = UslModel { sigma: 0.1, kappa: 0.05, service: Duration::from_millis(20) };
        let state = UslState::new(m, Timer::start().unwrap());
        let alone = Instant::now();
        state.serve().await;
        let alone = alone.elapsed();
        assert!(alone >= m.response_time(1), "{alone:?}");
        let four = Instant::now();
        tokio::join!(state.serve(), state.serve(), state.serve(), state.serve());
        let four = four.elapsed();
        // The last of four found four in flight: 20 ms × (1 + 0.3 + 0.6) = 38 ms.
        assert!(four >= m.response_time(4), "{four:?}");
        assert_eq!(state.in_flight.load(Ordering::Acquire), 0);
    }
}
