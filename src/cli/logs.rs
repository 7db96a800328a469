//! `logs`, `reset-logs` and Axes' `axes_reset_logs`: the access log from the shell.

use std::time::Duration;

use super::source::Records;
use super::{printable, LogsArgs, Output};
use crate::error::Result;
use crate::record::LogFilter;
use crate::wire;

/// Axes' default age for `axes_reset_logs`, in days.
const AXES_DEFAULT_DAYS: u64 = 30;

pub(super) async fn logs(records: &impl Records, args: LogsArgs, output: Output) -> Result<()> {
    let filter = LogFilter {
        ip: args.ip,
        username: args.username,
        ..LogFilter::default()
    };
    let entries = records.logs(&filter, args.limit).await?;
    output.print(wire::logs(&entries), || {
        entries
            .iter()
            .map(|entry| {
                format!(
                    "{}\t{}\t{}\t{}\t{}\t{}",
                    wire::rfc3339(entry.time),
                    entry.outcome.name(),
                    entry.ip,
                    printable(entry.username.as_deref().unwrap_or("-")),
                    printable(entry.user_agent.as_deref().unwrap_or("-")),
                    printable(entry.path.as_deref().unwrap_or("-")),
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    });
    Ok(())
}

pub(super) async fn reset_logs(
    records: &impl Records,
    age: Duration,
    output: Output,
) -> Result<()> {
    let removed = records.reset_logs(age).await?;
    output.print(wire::removed(removed), || {
        format!("{removed} log entries removed.")
    });
    Ok(())
}

/// `axes_reset_logs [--age] DAYS`: Axes' wording, not pluralised.
pub(super) async fn axes_reset_logs(
    records: &impl Records,
    days: Option<u64>,
    output: Output,
) -> Result<()> {
    let days = days.unwrap_or(AXES_DEFAULT_DAYS);
    let removed = records
        .reset_logs(Duration::from_secs(days.saturating_mul(24 * 3600)))
        .await?;
    output.print(wire::removed(removed), || {
        if removed > 0 {
            format!("{removed} logs removed.")
        } else {
            "No logs found.".to_string()
        }
    });
    Ok(())
}
