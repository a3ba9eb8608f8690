//! Interning parameter names, so that a storage holding many trials keeps one allocation
//! per name rather than one per trial and per map.

use std::collections::BTreeSet;

use lepton_core::ParamName;

/// A set of parameter names, each allocated once.
#[derive(Debug, Clone, Default)]
pub(crate) struct Names(BTreeSet<ParamName>);

impl Names {
    /// The shared copy of `name`, added on first use.
    pub fn intern(&mut self, name: &str) -> ParamName {
        if let Some(shared) = self.0.get(name) {
            return shared.clone();
        }
        let shared = ParamName::from(name);
        self.0.insert(shared.clone());
        shared
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_allocation_per_name() {
        let mut names = Names::default();
        let a = names.intern("x");
        let b = names.intern(&String::from("x"));
        let y = names.intern("y");
        assert!(ParamName::ptr_eq(&a, &b));
        assert_eq!(a, "x");
        assert_eq!(y, "y");
        assert_eq!(names.0.len(), 2);
    }
}
