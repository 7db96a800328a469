//! `check`, `fail` and `succeed`: what a login page would ask, from the shell.

use super::{AttemptArgs, Output, SuccessArgs};
use crate::attempt::Attempt;
use crate::engine::{Engine, Lockout, Verdict};
use crate::error::Result;
use crate::store::Store;
use crate::wire;

fn attempt(args: &AttemptArgs) -> Result<Attempt> {
    Attempt::new(
        args.ip,
        args.username.as_deref(),
        args.user_agent.as_deref(),
        args.path.as_deref(),
    )
}

pub(super) async fn check<S: Store>(
    engine: &Engine<S>,
    args: AttemptArgs,
    output: Output,
) -> Result<()> {
    let verdict = engine.check(&attempt(&args)?).await?;
    output.print(wire::verdict(&verdict), || match &verdict {
        Verdict::Allowed => "allowed".to_string(),
        Verdict::Locked(lockout) => format!("locked {}", lockout_line(lockout)),
        Verdict::WouldLock(lockout) => {
            format!(
                "allowed (observe mode); would be locked {}",
                lockout_line(lockout)
            )
        }
    });
    Ok(())
}

/// `(lockout): retry after 30 s; locked by ip`.
fn lockout_line(lockout: &Lockout) -> String {
    let mut line = format!("({})", lockout.reason.name());
    if let Some(retry_after) = lockout.retry_after {
        line += &format!(": retry after {} s", wire::seconds(retry_after));
    }
    if !lockout.locked_by.is_empty() {
        let by: Vec<String> = lockout.locked_by.iter().map(|c| c.to_string()).collect();
        line += &format!("; locked by {}", by.join(", "));
    }
    line
}

pub(super) async fn fail<S: Store>(
    engine: &Engine<S>,
    args: AttemptArgs,
    output: Output,
) -> Result<()> {
    let report = engine.fail(&attempt(&args)?).await?;
    output.print(wire::failure(&report), || {
        let state = match (report.retry_after, &report.would_lock) {
            (Some(retry_after), _) => {
                format!("locked: retry after {} s", wire::seconds(retry_after))
            }
            (None, _) if report.locked => "locked".to_string(),
            (None, Some(lockout)) => format!(
                "not locked (observe mode); would be locked {}",
                lockout_line(lockout)
            ),
            (None, None) => "not locked".to_string(),
        };
        let counts: Vec<String> = report
            .failures
            .iter()
            .map(|f| format!("{} {}", f.combination, f.count))
            .collect();
        if counts.is_empty() {
            format!("{state}; nothing counted")
        } else {
            format!("{state}; failures: {}", counts.join(", "))
        }
    });
    Ok(())
}

pub(super) async fn succeed<S: Store>(
    engine: &Engine<S>,
    args: SuccessArgs,
    output: Output,
) -> Result<()> {
    let attempt = Attempt::new(
        args.ip,
        args.username.as_deref(),
        args.user_agent.as_deref(),
        None,
    )?;
    let reset = engine.succeed(&attempt).await?;
    output.print(wire::success(reset, None), || {
        if reset {
            "success recorded; attempt records cleared".to_string()
        } else {
            "success recorded".to_string()
        }
    });
    Ok(())
}
