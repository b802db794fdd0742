//! The `tessera` binary, built inside the tests package so end-to-end tests can spawn it.

fn main() -> std::process::ExitCode {
    tessera_api::cli::main()
}
