//! What every node binary (`guardian-vm`, `guardian-edge`) does around its work: logs to
//! stderr through `tracing` (filter from `GUARDIAN_LOG`, default `info,libp2p=warn`; colours
//! only on a terminal), and stops on SIGTERM or SIGINT through one [`Shutdown`] that reaches
//! every task and thread of the process.

use crate::shutdown::Shutdown;

/// Installs the stderr log subscriber.
pub fn init_logging() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("GUARDIAN_LOG")
                .unwrap_or_else(|_| "info,libp2p=warn".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

/// The process's root stop signal, triggered on SIGTERM or SIGINT (or by the caller). Call it
/// inside the tokio runtime; hand the result (or children of it) to every task and thread.
pub fn shutdown_on_signal() -> Shutdown {
    let root = Shutdown::new();
    let trigger = root.clone();
    tokio::spawn(async move {
        tokio::select! {
            _ = shutdown_signal() => trigger.trigger(),
            _ = trigger.wait() => {}
        }
    });
    root
}

/// Resolves on SIGTERM or SIGINT.
async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("a SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("a SIGINT handler");
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM"),
        _ = int.recv() => tracing::info!("SIGINT"),
    }
}
