//! The `tessera` binary under another name, built inside the tests package so that end-to-end
//! tests can spawn it.

fn main() -> std::process::ExitCode {
    tessera_api::cli::main()
}
