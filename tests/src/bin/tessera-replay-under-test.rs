//! The `tessera-replay` binary under another name, built inside the tests package so that
//! end-to-end tests can run it against a server's storage (`verify`, `history`, `as-of`).

fn main() -> std::process::ExitCode {
    tessera_replay_tools::cli::main()
}
