//! `volume-syncing-operator`: reconciles PodFilesystemSync resources and serves the Pod
//! mutating admission webhook that injects the volume-syncing agent.

mod serve;

use clap::Parser as _;

use vsc_operator::cli::Cli;
use vsc_operator::tls;
use vsc_types::contract::LogFormat;

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("VSC_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().flatten_event(true).init(),
        LogFormat::Text => builder.with_ansi(false).init(),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    tls::install_crypto_provider();
    let config = cli.into_config()?;
    serve::run(config).await
}
