//! The raw Argon2id rate this machine allows the server: password verifications (and hashes)
//! per second through the same [`Passwords`] the server builds, with the same cost
//! (`TESSERA_ARGON2_*`, OWASP's defaults unless set), the same concurrency (one permit per core,
//! `Passwords::sized_to_cores`), the same runtime and the same allocator (mimalloc), but without
//! HTTP, the log or the read models. `bench/signin-load.sh` runs it beside the sign-in load, so
//! that sign-ins per second can be judged against what Argon2 alone allows.
//!
//! ```sh
//! cargo run --release -p tessera-api --example argon2_rate -- --seconds 10 --tasks 64
//! ```

// A benchmark outside the server: it fails loudly rather than report a wrong figure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use tessera_api::config::Argon2Settings;
use tessera_crypto::Passwords;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
struct Args {
    /// How long each measurement (verifications, then hashes) runs.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Tasks asking for a verification at once (they queue for the permits, as requests do).
    #[arg(long, default_value_t = 64)]
    tasks: usize,
    #[command(flatten)]
    argon2: Argon2Settings,
}

/// Runs `tasks` tasks calling `work` over and over for `seconds`; the completed calls per second.
async fn rate<F, Fut>(tasks: usize, seconds: u64, work: F) -> f64
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let done = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = started + Duration::from_secs(seconds);
    let handles: Vec<_> = (0..tasks)
        .map(|_| {
            let (work, done) = (work.clone(), done.clone());
            tokio::spawn(async move {
                while Instant::now() < deadline {
                    work().await;
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for handle in handles {
        handle.await.unwrap();
    }
    done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

fn main() {
    let args = Args::parse();
    // The server's runtime: multi-threaded, one worker per core, tokio's blocking pool.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let config = args.argon2.config();
        let passwords = Passwords::sized_to_cores(config).unwrap();
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        let hash = Arc::new(passwords.hash("violet kettle marathon 1987").await.unwrap());
        println!(
            "argon2id m={} KiB t={} p={}, {cores} permits (cores), {} tasks, {} s each",
            config.memory_kib, config.iterations, config.parallelism, args.tasks, args.seconds
        );
        let verifier = passwords.clone();
        let verified = rate(args.tasks, args.seconds, move || {
            let (passwords, hash) = (verifier.clone(), hash.clone());
            async move {
                assert!(
                    passwords
                        .verify("violet kettle marathon 1987", &hash)
                        .await
                        .unwrap()
                );
            }
        })
        .await;
        println!("verifications/s: {verified:.1}");
        let hashed = rate(args.tasks, args.seconds, move || {
            let passwords = passwords.clone();
            async move {
                passwords.hash("violet kettle marathon 1987").await.unwrap();
            }
        })
        .await;
        println!("hashes/s: {hashed:.1}");
    });
}
