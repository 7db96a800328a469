//! Imports: records counted elsewhere (Django Axes' rows) merged into identities' records and
//! locks by `import.lua`, one call per record, all in one round trip.

use redis::Cmd;

use super::{epoch_secs, millis, remaining, RedisStore};
use crate::error::{Error, Result};
use crate::keys::{record_field, KeyKind};
use crate::record::IdentityState;
use crate::store::scripts::IMPORT;
use crate::store::ImportedRecord;

pub(super) async fn import_records(
    store: &RedisStore,
    records: &[ImportedRecord],
) -> Result<Vec<IdentityState>> {
    let requests: Vec<Cmd> = records
        .iter()
        .map(|record| store.import_request(record))
        .collect();
    let replies = store.round_trip(&requests).await?;
    replies
        .into_iter()
        .map(|reply| {
            let values: Vec<i64> = store.parse(reply)?;
            let [failures, lock_ms, started] = values[..] else {
                return Err(Error::UnexpectedReply {
                    target: store.target.clone(),
                    detail: format!("import.lua answered {} values", values.len()),
                });
            };
            Ok(IdentityState {
                failures: u64::try_from(failures).unwrap_or(0),
                lock_remaining: remaining(lock_ms),
                lock_started: started == 1,
                lockouts: 0,
            })
        })
        .collect()
}

impl RedisStore {
    /// `import.lua` on the record's identity: its count, times, expiries and metadata.
    fn import_request(&self, record: &ImportedRecord) -> Cmd {
        let identity = &record.identity;
        let keys = [
            self.keys.key(KeyKind::Attempt, identity),
            self.keys.key(KeyKind::Lock, identity),
        ];
        let mut command = IMPORT.evalsha(
            &keys,
            (
                record.failures,
                epoch_secs(record.first_failure),
                epoch_secs(record.last_failure),
                millis(record.expires_in),
                record.locked_for.map_or(0, millis),
            ),
        );
        for (field, value) in [
            (record_field::USER_AGENT, &record.user_agent),
            (record_field::PATH, &record.path),
        ] {
            if let Some(value) = value {
                command.arg(field).arg(value);
            }
        }
        command
    }
}
