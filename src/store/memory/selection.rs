//! Which records a target selects, for listings and resets.

use super::{identity_of, SpaceId, State, Tag};
use crate::target::Target;

impl State {
    /// The tags of the records `target` selects (as a listing walks the record hashes).
    pub(super) fn selected(&self, space: SpaceId, target: &Target) -> Vec<String> {
        selected(self.spaces[space].records.keys(), target)
    }

    /// The tags of the identities `target` selects that have a record or a lockout count (as
    /// a reset scans every key of an identity).
    pub(super) fn selected_for_removal(&self, space: SpaceId, target: &Target) -> Vec<String> {
        let space = &self.spaces[space];
        let mut tags = selected(space.records.keys(), target);
        tags.extend(
            selected(space.lockouts.keys(), target)
                .into_iter()
                .filter(|tag| !space.records.contains_key(tag.as_str())),
        );
        tags
    }
}

fn selected<'t>(tags: impl Iterator<Item = &'t Tag>, target: &Target) -> Vec<String> {
    tags.filter(|tag| target.matches(&identity_of(tag)))
        .map(|tag| tag.to_string())
        .collect()
}
