//! The Goose client of nest's side-by-side benchmark (bench/perf.sh, bench/instr.sh): one scenario with one
//! transaction, `GET /` with no think time, the way a Goose user writes the simplest load test. The response body
//! is read to its end, as wrk, oha and nest do, so that the connection goes back to the pool. Every option
//! (host, users, hatch rate, run time or iterations, report file) comes from Goose's own command line.

use goose::prelude::*;

/// GET / and read the whole body.
async fn get_root(user: &mut GooseUser) -> TransactionResult {
    let goose = user.get("/").await?;
    if let Ok(response) = goose.response {
        // The benchmark reads Goose's request counts, which a body read error does not change (loopback nginx
        // sends none).
        let _ = response.bytes().await;
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), GooseError> {
    GooseAttack::initialize()?
        .register_scenario(scenario!("Hello").register_transaction(transaction!(get_root)))
        .execute()
        .await?;
    Ok(())
}
