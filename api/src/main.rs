//! The `tessera` binary. Everything it does is in `tessera_api::cli`.

fn main() -> std::process::ExitCode {
    tessera_api::cli::main()
}
