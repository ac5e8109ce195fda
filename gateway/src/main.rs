//! The `gateway` binary: a thin shell over [`gateway::cli::main`].

/// jemalloc instead of glibc's malloc: the message path allocates many small,
/// short-lived buffers on several threads, and with jemalloc the gateway
/// spends 11 % (outbound) to 18 % (inbound) less CPU per message for about
/// 7 MB more peak RSS (bench/load.py, interleaved A/B on this machine; see
/// the README's Performance section). mimalloc was as fast but tripled RSS.
#[global_allocator]
static ALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> std::process::ExitCode {
    gateway::cli::main()
}
