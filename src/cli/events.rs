//! `lockout events [--since ID] [--follow]`: the events, one line (or JSON object) each.

use std::time::Duration;

use super::source::Records;
use super::{printable, EventsArgs, Output};
use crate::error::{Error, Result};
use crate::event::{EventCursor, StoredEvent};
use crate::wire;

/// How often `--follow` asks for new events.
const FOLLOW_INTERVAL: Duration = Duration::from_millis(500);

/// Events read per request while following.
const FOLLOW_BATCH: usize = 1000;

pub(super) async fn events(records: &impl Records, args: EventsArgs, output: Output) -> Result<()> {
    let mut since = match &args.since {
        None => EventCursor::default(),
        Some(since) => EventCursor::parse(since).ok_or_else(|| {
            Error::invalid(format!(
                "--since: {since:?} is not an event id (such as 1764380000000-0-3)"
            ))
        })?,
    };
    let limit = if args.follow {
        FOLLOW_BATCH
    } else {
        args.limit
    };
    loop {
        let events = records.events(&since, limit).await?;
        for stored in &events {
            print(stored, output);
        }
        since = since.after(&events);
        if !args.follow {
            return Ok(());
        }
        if events.len() < limit {
            tokio::time::sleep(FOLLOW_INTERVAL).await;
        }
    }
}

/// One event: in JSON mode its object (one per line, as `GET /v1/events` has it), else
/// `ID TIME KIND SUBJECT DETAIL`, tab-separated, the subject escaped (it holds usernames).
fn print(stored: &StoredEvent, output: Output) {
    let event = &stored.event;
    output.print(wire::event(stored), || {
        let detail = event.detail(|length| format!("{} s", wire::seconds(length)));
        format!(
            "{}\t{}\t{}\t{}\t{}",
            stored.id,
            wire::rfc3339(stored.time),
            event.kind.name(),
            printable(&event.subject),
            printable(&detail),
        )
    });
}
