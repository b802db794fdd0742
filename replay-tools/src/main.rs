//! `tessera-replay`: compliance tooling, read-only against the log (see `cli`).
//!
//! mimalloc replaces the system allocator, as in `tessera`: `verify` allocates every event's
//! strings on the reading threads and frees them on the verifying one.

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    tessera_replay_tools::cli::main()
}
