//! The `tessera` binary. Everything it does is in `tessera_api::cli`.
//!
//! mimalloc replaces the system allocator: the token endpoint allocates many small, short-lived
//! buffers across worker threads, where glibc's allocator spends a measurable share of the CPU
//! (see BENCHMARKS.md).

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    tessera_api::cli::main()
}
