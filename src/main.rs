//! The `lockout` binary: everything lives in the library's `cli` module.

fn main() -> std::process::ExitCode {
    lockout::cli::main()
}
