//! The `gateway` binary: a thin shell over [`gateway::cli::main`].

/// mimalloc instead of glibc's malloc: the message path allocates many small,
/// short-lived buffers on two threads at once, where glibc's allocator spent
/// about a tenth of the gateway's CPU (measured with perf; see the README's
/// Performance section).
//#[global_allocator]
//static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
fn main() -> std::process::ExitCode {
    gateway::cli::main()
}
