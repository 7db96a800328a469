//! An identity: one combination of a policy filled with one attempt's values, e.g.
//! `ip=203.0.113.9&username=alice`, and its tag, that text with every value percent-encoded so
//! that only `A-Z a-z 0-9 - . _ ~ %` remain in a value: no value can hold a delimiter (`&`, `=`),
//! a brace or a glob character, so that two identities never share a tag and a tag can stand in
//! a Redis key and a SCAN pattern as it is (see `keys`).

use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use crate::attempt::{
    parse_ip, parse_named_username, truncate, Attempt, Field, MAX_METADATA_CHARS,
};
use crate::error::{Error, Result};
use crate::policy::Combination;

const VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// One combination filled with one attempt's values; `tag` is its encoded form.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Identity {
    values: Vec<(Field, String)>,
    tag: String,
}

impl Identity {
    /// `values` must be in field order without repeats.
    pub(crate) fn new(values: Vec<(Field, String)>) -> Self {
        let tag = encode_identity(&values);
        Identity { values, tag }
    }

    /// The identity `attempt` forms for `combination`, or `None` when one of its fields is
    /// absent (an attempt without a username never forms a username identity).
    pub fn of(attempt: &Attempt, combination: &Combination) -> Option<Self> {
        Identity::counted_as(attempt, &attempt.ip.to_string(), combination)
    }

    /// As `of`, with the attempt's IP counted as `ip`, written out (an IPv6 client as its
    /// network, see `Policy::counted_ip`; written once for all of an attempt's identities).
    pub fn counted_as(attempt: &Attempt, ip: &str, combination: &Combination) -> Option<Self> {
        let values = combination
            .fields()
            .iter()
            .map(|&field| {
                let value = match field {
                    Field::Ip => Some(ip.to_string()),
                    other => attempt.value(other),
                };
                value.map(|value| (field, value))
            })
            .collect::<Option<Vec<_>>>()?;
        Some(Identity::new(values))
    }

    pub fn values(&self) -> &[(Field, String)] {
        &self.values
    }

    pub fn value(&self, field: Field) -> Option<&str> {
        self.values
            .iter()
            .find(|(f, _)| *f == field)
            .map(|(_, value)| value.as_str())
    }

    /// The identity holding exactly these fields, as an attempt would form it (canonical IP,
    /// user agent cut to length), e.g. from a listed record's parameters. At least one field.
    pub fn of_fields(
        ip: Option<&str>,
        username: Option<&str>,
        user_agent: Option<&str>,
    ) -> Result<Self> {
        let mut values = Vec::new();
        if let Some(ip) = ip {
            values.push((Field::Ip, parse_ip(ip)?.to_string()));
        }
        if let Some(username) = username {
            values.push((Field::Username, parse_named_username(username)?));
        }
        if let Some(user_agent) = user_agent {
            if user_agent.is_empty() {
                return Err(Error::invalid("user_agent: must not be empty"));
            }
            values.push((Field::UserAgent, truncate(user_agent, MAX_METADATA_CHARS)));
        }
        if values.is_empty() {
            return Err(Error::invalid(
                "a record is named by its ip, username or user_agent",
            ));
        }
        Ok(Identity::new(values))
    }

    /// The same identity with a device's ID (a listed device record's `parameters`): it has a
    /// username and no user agent, as a device's identity does.
    pub fn with_device(self, device: Option<&str>) -> Result<Self> {
        let Some(device) = device else {
            return Ok(self);
        };
        let fields: Vec<Field> = self.values.iter().map(|(field, _)| *field).collect();
        if fields != [Field::Username] || device.is_empty() {
            return Err(Error::invalid(
                "device: names a device record, whose only other field is a username",
            ));
        }
        let mut values = self.values;
        values.push((Field::Device, device.to_string()));
        Ok(Identity::new(values))
    }

    /// The identity whose `tag` this is; `None` for anything `tag` never produces.
    pub fn from_tag(tag: &str) -> Option<Self> {
        decode_identity(tag)
    }

    /// The encoded identity, as it stands between the braces of its keys.
    pub fn tag(&self) -> &str {
        &self.tag
    }
}

/// Encodes identity values as `ip=203.0.113.9&username=alice`.
pub(crate) fn encode_identity(values: &[(Field, String)]) -> String {
    let mut tag = String::with_capacity(values.iter().map(|(_, value)| value.len() + 12).sum());
    for (field, value) in values {
        if !tag.is_empty() {
            tag.push('&');
        }
        tag.push_str(field.name());
        tag.push('=');
        tag.extend(utf8_percent_encode(value, VALUE));
    }
    tag
}

pub(crate) fn encode_value(value: &str) -> String {
    utf8_percent_encode(value, VALUE).to_string()
}

/// The inverse of `encode_identity`; `None` unless `tag` is exactly what it would produce.
pub(crate) fn decode_identity(tag: &str) -> Option<Identity> {
    let mut values: Vec<(Field, String)> = Vec::new();
    for pair in tag.split('&') {
        let (name, encoded) = pair.split_once('=')?;
        let field = Field::named(name)?;
        if values.last().is_some_and(|(last, _)| *last >= field) {
            return None;
        }
        let value = percent_decode_str(encoded).decode_utf8().ok()?.into_owned();
        values.push((field, value));
    }
    let identity = Identity::new(values);
    (identity.tag() == tag).then_some(identity)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_attempt_without_a_username_forms_no_username_identity() {
        let attempt = Attempt::parse("192.0.2.1", Some(""), None, None).unwrap();
        let by_user = Combination::new([Field::Username]).unwrap();
        assert!(Identity::of(&attempt, &by_user).is_none());
    }
}
