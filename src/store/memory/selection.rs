//! Which records a target selects, for listings and resets.

use super::{identity_of, SpaceId, State, Tag};
use crate::target::Target;

impl State {
    /// The tags of the records `target` selects (as a listing walks the record hashes and
    /// the IPs' spraying sets), each once.
    pub(super) fn selected(&self, space: SpaceId, target: &Target) -> Vec<String> {
        let space = &self.spaces[space];
        let mut tags = selected(space.records.keys(), target);
        tags.extend(
            selected(space.sprayings.keys(), target)
                .into_iter()
                .filter(|tag| !space.records.contains_key(tag.as_str())),
        );
        tags
    }

    /// The tags of the identities `target` selects that have a record, a lockout count or a
    /// spraying count (as a reset scans every key of an identity), each once.
    pub(super) fn selected_for_removal(&self, space: SpaceId, target: &Target) -> Vec<String> {
        let mut tags = self.selected(space, target);
        let space = &self.spaces[space];
        tags.extend(
            selected(space.lockouts.keys(), target)
                .into_iter()
                .filter(|tag| {
                    !space.records.contains_key(tag.as_str())
                        && !space.sprayings.contains_key(tag.as_str())
                }),
        );
        tags
    }
}

fn selected<'t>(tags: impl Iterator<Item = &'t Tag>, target: &Target) -> Vec<String> {
    tags.filter(|tag| target.matches(&identity_of(tag)))
        .map(|tag| tag.to_string())
        .collect()
}
