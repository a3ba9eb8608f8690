//! Parameter names, shared rather than copied.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::borrow::Borrow;
use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

/// A parameter's name, as the keys of [`FrozenTrial::params`](crate::FrozenTrial::params) and
/// [`FrozenTrial::distributions`](crate::FrozenTrial::distributions) hold it.
///
/// Cloning shares one allocation (an `Arc<str>`), so a storage that keeps many trials can
/// hand every trial the same name instead of a copy per trial and per map. It compares,
/// orders, hashes, prints and serializes exactly as the string it holds, so maps keyed by
/// it are still looked up with a `&str` and a trial's JSON is unchanged.
///
/// ```
/// use std::collections::BTreeMap;
/// use lepton_core::ParamName;
///
/// let name = ParamName::from("lr");
/// let mut params = BTreeMap::new();
/// params.insert(name.clone(), 0.1);
/// assert_eq!(params.get("lr"), Some(&0.1));
/// assert!(ParamName::ptr_eq(params.keys().next().unwrap(), &name));
/// assert_eq!(name, "lr");
/// assert_eq!(serde_json::to_string(&name).unwrap(), "\"lr\"");
/// ```
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ParamName(Arc<str>);

impl ParamName {
    /// The name as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `a` and `b` share one allocation (not merely equal text).
    pub fn ptr_eq(a: &ParamName, b: &ParamName) -> bool {
        Arc::ptr_eq(&a.0, &b.0)
    }
}

impl Deref for ParamName {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for ParamName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// Equality, order and hash are those of the text, so `&str` look-ups in maps keyed by
/// `ParamName` find the same entries.
impl Borrow<str> for ParamName {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ParamName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Prints as the string it holds (`"lr"`), as a `String` key did.
impl fmt::Debug for ParamName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl From<&str> for ParamName {
    fn from(name: &str) -> Self {
        ParamName(name.into())
    }
}

impl From<String> for ParamName {
    fn from(name: String) -> Self {
        ParamName(name.into())
    }
}

impl From<&String> for ParamName {
    fn from(name: &String) -> Self {
        ParamName(name.as_str().into())
    }
}

impl From<Arc<str>> for ParamName {
    fn from(name: Arc<str>) -> Self {
        ParamName(name)
    }
}

impl From<ParamName> for Arc<str> {
    fn from(name: ParamName) -> Self {
        name.0
    }
}

impl From<ParamName> for String {
    fn from(name: ParamName) -> Self {
        name.0.as_ref().to_owned()
    }
}

impl PartialEq<str> for ParamName {
    fn eq(&self, other: &str) -> bool {
        *self.0 == *other
    }
}

impl PartialEq<&str> for ParamName {
    fn eq(&self, other: &&str) -> bool {
        *self.0 == **other
    }
}

impl PartialEq<String> for ParamName {
    fn eq(&self, other: &String) -> bool {
        *self.0 == **other
    }
}

impl PartialEq<ParamName> for str {
    fn eq(&self, other: &ParamName) -> bool {
        *self == *other.0
    }
}

impl PartialEq<ParamName> for &str {
    fn eq(&self, other: &ParamName) -> bool {
        **self == *other.0
    }
}

impl PartialEq<ParamName> for String {
    fn eq(&self, other: &ParamName) -> bool {
        **self == *other.0
    }
}

/// A plain JSON string.
impl Serialize for ParamName {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

/// From a plain string.
impl<'de> Deserialize<'de> for ParamName {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(ParamName::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeMap, HashSet};

    #[test]
    fn behaves_as_its_text() {
        let a = ParamName::from("alpha");
        let b = ParamName::from(String::from("beta"));
        assert!(a < b);
        assert_eq!(a, "alpha");
        assert_eq!("alpha", a);
        assert_eq!(a, String::from("alpha"));
        assert_eq!(a.as_str(), "alpha");
        assert_eq!(a.len(), 5);
        assert_eq!(format!("{a}"), "alpha");
        assert_eq!(format!("{a:?}"), "\"alpha\"");
        assert_eq!(String::from(a.clone()), "alpha");
        let set: HashSet<ParamName> = [a.clone(), b.clone()].into_iter().collect();
        assert!(set.contains("beta"));
        let map: BTreeMap<ParamName, i32> = [(b, 2), (a, 1)].into_iter().collect();
        assert_eq!(map["alpha"], 1);
        assert_eq!(
            map.keys().map(|k| k.as_str()).collect::<Vec<_>>(),
            ["alpha", "beta"]
        );
    }

    #[test]
    fn clones_share_one_allocation() {
        let a = ParamName::from("x");
        let b = a.clone();
        assert!(ParamName::ptr_eq(&a, &b));
        assert!(!ParamName::ptr_eq(&a, &ParamName::from("x")));
    }

    #[test]
    fn serializes_as_a_plain_string() {
        let map: BTreeMap<ParamName, f64> = [("x".into(), 0.5)].into_iter().collect();
        let json = serde_json::to_string(&map).unwrap();
        assert_eq!(json, r#"{"x":0.5}"#);
        let plain: BTreeMap<String, f64> = [("x".to_owned(), 0.5)].into_iter().collect();
        assert_eq!(json, serde_json::to_string(&plain).unwrap());
        let back: BTreeMap<ParamName, f64> = serde_json::from_str(&json).unwrap();
        assert_eq!(back, map);
    }
}
