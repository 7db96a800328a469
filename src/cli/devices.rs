//! `devices revoke`: voids a username's device tokens (see `devices`).

use super::source::Records;
use super::{printable, Output};
use crate::error::Result;
use crate::wire;

pub(super) async fn revoke(
    records: &impl Records,
    usernames: &[String],
    output: Output,
) -> Result<()> {
    records.revoke_devices(usernames).await?;
    output.print(wire::revoked(), || {
        let names: Vec<String> = usernames
            .iter()
            .map(|username| printable(username).into_owned())
            .collect();
        format!("Device tokens of {} revoked.", names.join(", "))
    });
    Ok(())
}
