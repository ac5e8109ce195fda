//! The command line: one binary, `gateway`, with subcommands for the service,
//! keys, envelopes and operator tools. `main.rs` only calls [`main`].

mod backup_cmd;
mod config_cmd;
mod crossworld_cmd;
mod demo_cmd;
mod demo_sim;
mod envelope_cmd;
mod examples;
mod input;
mod keys_cmd;
mod messages_cmd;
mod model_cmd;
mod pdu_cmd;
mod pg_backup_cmd;
mod pg_cmd;
mod review_blocks;
mod review_cmd;
mod review_decide;
mod review_tui;
mod sink;
mod smpp_cmd;
mod trace_source;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::app::config::{Config, LogFormat};

/// SMS/RCS interoperability gateway with metadata-only spam defense.
///
/// Runs with no configuration at all: `gateway serve` listens on
/// 127.0.0.1:8080 and keeps its database and keys in ./gateway-data/.
// `--version` is not propagated: like the global options, it is shown once
// (under `gateway --help`), not in every subcommand's list.
#[derive(Debug, Parser)]
#[command(
    name = "gateway",
    version,
    about,
    long_about = None,
    after_help = examples::GLOBAL_HELP,
)]
pub struct Cli {
    /// TOML configuration file (unknown keys are errors). Without it the
    /// embedded defaults apply. Hidden from the generated lists (every
    /// subcommand would repeat it): `examples::GLOBAL_HELP` shows it once.
    #[arg(long, global = true, env = "GATEWAY_CONFIG", hide = true)]
    config: Option<PathBuf>,
    /// Data directory (database and keys); overrides the config's data_dir.
    #[arg(long, global = true, env = "GATEWAY_DATA_DIR", hide = true)]
    data_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the gateway service until SIGINT/SIGTERM.
    Serve(ServeArgs),
    /// See the whole system in a minute, with no config file: the real
    /// service on a temporary data directory with a simulated SMSC, phone
    /// and private side; one message each way, every step printed.
    Demo(demo_cmd::DemoArgs),
    /// Manage the gateway's edge keys and API keys.
    #[command(subcommand)]
    Keys(keys_cmd::KeysCommand),
    /// Register or show internal recipients' public keys.
    #[command(subcommand)]
    Identity(keys_cmd::IdentityCommand),
    /// Seal, open and inspect envelopes (the encrypted internal format).
    #[command(subcommand)]
    Envelope(envelope_cmd::EnvelopeCommand),
    /// Decode and encode SMS PDUs (modem PDU mode).
    #[command(subcommand)]
    Pdu(pdu_cmd::PduCommand),
    /// Run the rate limiter and classifier over a recorded metadata trace on
    /// the trace's own clock; writes one verdict line per sender.
    Replay(model_cmd::ReplayArgs),
    /// Write the gateway's own traffic as a metadata trace (no content), for
    /// backtesting with `replay` and training with `model train`.
    ExportTrace(model_cmd::ExportArgs),
    /// Train and evaluate the spam model.
    #[command(subcommand)]
    Model(model_cmd::ModelCommand),
    /// Review what the classifier held: list, show, mark spam/ham, release,
    /// drop, allow/block lists, audit log, stats. Without a subcommand, in a
    /// terminal: an interactive walk through the queue.
    Review {
        #[command(subcommand)]
        command: Option<review_cmd::ReviewCommand>,
    },
    /// A message's metadata and status history (never its text).
    #[command(subcommand)]
    Messages(messages_cmd::MessagesCommand),
    /// List and retry dead-lettered messages.
    #[command(subcommand, name = "dead-letters")]
    DeadLetters(keys_cmd::DeadLetterCommand),
    /// SMPP server clients: `gateway smpp client add NAME [--throughput N]`, list, remove.
    #[command(subcommand)]
    Smpp(smpp_cmd::SmppCommand),
    /// A tiny local HTTP sink that prints what the gateway delivers to it
    /// (for the walk-through, demos and benchmarks).
    Sink(sink::SinkArgs),
    /// Copy the data directory (database as of one commit, and keys) while
    /// the service runs.
    Backup(backup_cmd::BackupArgs),
    /// Put a backup into a new data directory (checked before anything is
    /// written; an older backup's database is migrated).
    Restore(backup_cmd::RestoreArgs),
    /// Check a configuration file without starting anything.
    #[command(subcommand)]
    Config(config_cmd::ConfigCommand),
}

/// Options of `gateway serve`.
#[derive(Debug, clap::Args)]
struct ServeArgs {
    /// Address to listen on (overrides the config), e.g. 127.0.0.1:0 for an ephemeral port.
    #[arg(long, env = "GATEWAY_LISTEN")]
    listen: Option<std::net::SocketAddr>,
    /// Log format (overrides the config).
    #[arg(long, value_enum, env = "GATEWAY_LOG_FORMAT")]
    log_format: Option<LogFormat>,
}

/// An error that maps to an exit status: 2 for bad input, 1 for the rest.
#[derive(Debug)]
pub struct CliError {
    /// Exit status.
    pub code: u8,
    /// What to print on stderr.
    pub message: String,
}

impl CliError {
    /// Bad input from the operator (exit 2).
    pub fn input(message: impl Into<String>) -> Self {
        Self {
            code: 2,
            message: message.into(),
        }
    }
}

impl From<crate::Error> for CliError {
    fn from(e: crate::Error) -> Self {
        let code = if matches!(e, crate::Error::Invalid { .. } | crate::Error::Config(_)) {
            2
        } else {
            1
        };
        Self {
            code,
            message: e.to_string(),
        }
    }
}

/// Loads the config named on the command line, with `--data-dir` applied.
fn load_config(cli: &Cli) -> Result<Config, CliError> {
    let mut cfg = Config::load(cli.config.as_deref())?;
    if let Some(d) = &cli.data_dir {
        cfg.data_dir = d.clone();
    }
    Ok(cfg)
}

fn init_logging(format: LogFormat, level: &str) {
    use std::io::IsTerminal;
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    // Colour only on a terminal, and never with NO_COLOR set (no-color.org):
    // a log file or journald gets plain text.
    let ansi = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        // A failed log write (stderr a closed pipe) must not report itself
        // with eprintln!, which panics the task that logged: the signal
        // task once died that way and SIGTERM stopped working.
        .log_internal_errors(false)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Human => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}

/// A CLI command whose reader went away (`gateway review list | head -3`)
/// ends quietly with the status a SIGPIPE would give (141) instead of a
/// panic message: Rust ignores SIGPIPE, so the write fails and `println!`
/// panics. Any other panic keeps the default report.
fn exit_quietly_on_broken_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let text = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or("");
        if text.contains("Broken pipe") {
            std::process::exit(141);
        }
        default(info);
    }));
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    exit_quietly_on_broken_pipe();
    let cli = examples::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gateway: {}", e.message);
            ExitCode::from(e.code)
        }
    }
}

/// Whether a command reads or writes the store (on PostgreSQL, `pg_cmd` routes it).
fn uses_store(c: &Command) -> bool {
    !matches!(
        c,
        Command::Serve(_)
            | Command::Demo(_)
            | Command::Envelope(_)
            | Command::Pdu(_)
            | Command::Config(_)
            | Command::Sink(_)
    )
}

fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError {
            code: 1,
            message: format!("cannot start the runtime: {e}"),
        })
}

fn run(cli: Cli) -> Result<(), CliError> {
    if uses_store(&cli.command) {
        if let Some(done) = pg_cmd::intercept(&cli, &load_config(&cli)?) {
            return done;
        }
    }
    match &cli.command {
        Command::Serve(args) => {
            let mut cfg = load_config(&cli)?;
            if let Some(l) = args.listen {
                cfg.listen = l;
            }
            if let Some(f) = args.log_format {
                cfg.log.format = f;
            }
            init_logging(cfg.log.format, &cfg.log.level);
            runtime()?
                .block_on(crate::app::serve::run(cfg))
                .map_err(CliError::from)
        }
        Command::Demo(args) => {
            // Warnings only: the demo prints its own steps.
            init_logging(LogFormat::Human, "warn");
            demo_cmd::run(args, cli.data_dir.as_deref())
        }
        Command::Keys(cmd) => keys_cmd::keys(&load_config(&cli)?, cmd),
        Command::Identity(cmd) => keys_cmd::identity(&load_config(&cli)?, cmd),
        Command::Messages(cmd) => messages_cmd::run(&load_config(&cli)?, cmd),
        Command::DeadLetters(cmd) => keys_cmd::dead_letters(&load_config(&cli)?, cmd),
        Command::Envelope(cmd) => {
            let cfg = load_config(&cli)?;
            envelope_cmd::run(&cfg, cmd)
        }
        Command::Replay(args) => model_cmd::replay(&load_config(&cli)?, args),
        Command::Model(cmd) => model_cmd::run(&load_config(&cli)?, cmd),
        Command::ExportTrace(args) => model_cmd::export_trace(&load_config(&cli)?, args),
        Command::Review { command } => review_cmd::run(&load_config(&cli)?, command.as_ref()),
        Command::Pdu(cmd) => pdu_cmd::run(&load_config(&cli)?, cmd),
        Command::Smpp(cmd) => smpp_cmd::run(&load_config(&cli)?, cmd),
        Command::Backup(args) => backup_cmd::backup(&load_config(&cli)?, args),
        Command::Restore(args) => backup_cmd::restore(&load_config(&cli)?, args),
        Command::Config(cmd) => config_cmd::run(cmd),
        Command::Sink(args) => {
            init_logging(LogFormat::Human, "warn");
            runtime()?.block_on(sink::run(args))
        }
    }
}
