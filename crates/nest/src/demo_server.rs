//! `nest demo-server`: the built-in target on its own, for trying nest and for benchmarks.

use anyhow::{Context, Result};
use nest_demo::{DemoConfig, DemoServer, Mode};

use crate::cli::DemoServerArgs;

/// Runs the demo target until Ctrl-C or SIGTERM, then prints how many requests it served.
pub fn run(args: DemoServerArgs) -> Result<()> {
    let mode = if args.hello || args.usl.is_some() { Mode::Hello } else { Mode::Shop };
    let server = DemoServer::start(DemoConfig {
        addr: std::net::SocketAddr::from(([127, 0, 0, 1], args.port)),
        mode,
        threads: args.threads.max(1),
        latency: args.latency.unwrap_or_default(),
        stall: args.stall,
        usl: args.usl,
        reuse_port: args.reuse_port,
    })
    .context("could not start the demo target")?;
    println!("nest demo target ({mode}) listening on {}", server.url());
    if let Some(latency) = args.latency {
        println!("every response is sent {} after its request", humantime::format_duration(latency));
    }
    if let Some(m) = args.usl {
        println!("USL target: sigma {}, kappa {}, service time {:?} alone", m.sigma, m.kappa, m.service);
    }
    if let Some(stall) = args.stall {
        println!(
            "stall: nothing is answered from {} to {} after start",
            humantime::format_duration(stall.at),
            humantime::format_duration(stall.at + stall.length)
        );
    }
    println!("try: nest run --host {} -u 10 -t 30s", server.url());
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        #[cfg(unix)]
        {
            let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
            tokio::select! {
                r = tokio::signal::ctrl_c() => r?,
                _ = term.recv() => {}
            }
        }
        #[cfg(not(unix))]
        tokio::signal::ctrl_c().await?;
        Ok::<(), std::io::Error>(())
    })?;
    let stats = server.stats();
    server.stop();
    println!("served {} requests", stats.total);
    Ok(())
}
