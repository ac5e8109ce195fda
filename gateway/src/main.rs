//! The `gateway` binary: a thin shell over [`gateway::cli::main`].

fn main() -> std::process::ExitCode {
    gateway::cli::main()
}
