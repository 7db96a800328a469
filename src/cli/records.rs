//! `list` and `reset`, and the Django Axes aliases that map onto them (`axes_reset*`,
//! `axes_list_attempts`) with Axes' exact output.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};

use super::source::Records;
use super::{printable, usage, ListArgs, Output, ResetArgs};
use crate::attempt::Field;
use crate::error::Result;
use crate::record::AttemptRecord;
use crate::target::Target;
use crate::wire;

pub(super) async fn list(records: &impl Records, args: ListArgs, output: Output) -> Result<()> {
    let target = Target::matching(
        args.ip.into_iter().collect(),
        args.username.into_iter().collect(),
    );
    let listed = records.list(&target, args.locked).await?;
    output.print(wire::attempts(&listed), || {
        let mut lines =
            vec!["IDENTITY\tFAILURES\tLOCK\tLAST FAILURE\tUSER AGENT\tPATH".to_string()];
        lines.extend(listed.iter().map(|record| {
            let identity: Vec<String> = record
                .identity
                .values()
                .iter()
                .map(|(field, value)| format!("{}={}", field.name(), printable(value)))
                .collect();
            let mut lock = match (record.lock_remaining, record.would_lock_remaining) {
                (Some(remaining), _) => format!("locked, {} s left", wire::seconds(remaining)),
                (None, Some(remaining)) => {
                    format!("would be locked, {} s left", wire::seconds(remaining))
                }
                (None, None) => "-".to_string(),
            };
            if record.lockouts > 0 {
                let plural = if record.lockouts == 1 { "" } else { "s" };
                lock.push_str(&format!(
                    " ({} lockout{plural} remembered)",
                    record.lockouts
                ));
            }
            if let Some(spraying) = record.spraying {
                let sprayed = match (spraying.lock_remaining, spraying.would_lock_remaining) {
                    (Some(remaining), _) => format!(
                        "locked for spraying, {} s left ({} usernames)",
                        wire::seconds(remaining),
                        spraying.usernames
                    ),
                    (None, Some(remaining)) => format!(
                        "would be locked for spraying, {} s left ({} usernames)",
                        wire::seconds(remaining),
                        spraying.usernames
                    ),
                    (None, None) => format!(
                        "{} usernames within the spraying window",
                        spraying.usernames
                    ),
                };
                lock = if lock == "-" {
                    sprayed
                } else {
                    format!("{lock}; {sprayed}")
                };
            }
            format!(
                "{}\t{}\t{lock}\t{}\t{}\t{}",
                identity.join(" "),
                record.failures,
                record.last_failure.map_or("-".to_string(), wire::rfc3339),
                printable(record.user_agent.as_deref().unwrap_or("-")),
                printable(record.path.as_deref().unwrap_or("-")),
            )
        }));
        lines.join("\n")
    });
    Ok(())
}

pub(super) async fn reset(records: &impl Records, args: ResetArgs, output: Output) -> Result<()> {
    if args.ip.is_empty() && args.username.is_empty() && !args.all {
        return Err(usage(
            "reset: give --ip, --username or both, or --all to delete every record".into(),
        ));
    }
    let removed = remove(
        records,
        &Target::matching(args.ip, args.username),
        args.dry_run,
    )
    .await?;
    let mut json = wire::removed(removed);
    if args.dry_run {
        json["dry_run"] = true.into();
    }
    output.print(json, || {
        if args.dry_run {
            format!("{removed} attempt records would be removed.")
        } else {
            format!("{removed} attempt records removed.")
        }
    });
    Ok(())
}

/// `axes_reset`, `axes_reset_ip`, `axes_reset_username`, `axes_reset_ip_username`.
pub(super) async fn axes_reset(
    records: &impl Records,
    ips: Vec<std::net::IpAddr>,
    usernames: Vec<String>,
    output: Output,
) -> Result<()> {
    let removed = remove(records, &Target::matching(ips, usernames), false).await?;
    output.print(wire::removed(removed), || {
        if removed > 0 {
            format!("{removed} attempts removed.")
        } else {
            "No attempts found.".to_string()
        }
    });
    Ok(())
}

/// `axes_list_attempts`: `IP<TAB>USERNAME<TAB>FAILURES`, `None` for an absent field.
pub(super) async fn axes_list(records: &impl Records, output: Output) -> Result<()> {
    let listed = records.list(&Target::All, false).await?;
    output.print(wire::attempts(&listed), || {
        listed
            .iter()
            .map(|record: &AttemptRecord| {
                let field = |f| printable(record.identity.value(f).unwrap_or("None"));
                format!(
                    "{}\t{}\t{}",
                    field(Field::Ip),
                    field(Field::Username),
                    record.failures
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    });
    Ok(())
}

/// Runs the reset with a spinner on stderr when it is a terminal.
async fn remove(records: &impl Records, target: &Target, dry_run: bool) -> Result<u64> {
    let bar = if std::io::stderr().is_terminal() {
        let bar = ProgressBar::new_spinner().with_message("attempt records matched");
        if let Ok(style) = ProgressStyle::with_template("{spinner} {pos} {msg} ({elapsed})") {
            bar.set_style(style);
        }
        bar
    } else {
        ProgressBar::hidden()
    };
    let removed = records
        .reset(target, dry_run, &mut |matched| bar.set_position(matched))
        .await;
    bar.finish_and_clear();
    removed
}
