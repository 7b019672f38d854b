//! A set kept as a sorted vector: for the desired state's indexes, where almost every set
//! holds one element (the one object on a Service, the one claimant of a listener). A
//! `BTreeSet` allocates a node of eleven slots for its first element and a `HashSet` a table
//! of four; this allocates exactly what it holds.

/// A set of `T` in ascending order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmallSet<T>(Vec<T>);

impl<T> Default for SmallSet<T> {
    fn default() -> Self {
        Self(Vec::new())
    }
}

impl<T: Ord> SmallSet<T> {
    /// Adds `value`; false when it was there already.
    pub fn insert(&mut self, value: T) -> bool {
        match self.0.binary_search(&value) {
            Ok(_) => false,
            Err(at) => {
                self.0.reserve_exact(1);
                self.0.insert(at, value);
                true
            }
        }
    }

    /// Removes `value`; false when it was not there.
    pub fn remove(&mut self, value: &T) -> bool {
        match self.0.binary_search(value) {
            Ok(at) => {
                self.0.remove(at);
                self.0.shrink_to_fit();
                true
            }
            Err(_) => false,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The elements in ascending order.
    pub fn iter(&self) -> std::slice::Iter<'_, T> {
        self.0.iter()
    }

    /// The elements less than `value`, ascending.
    pub fn below(&self, value: &T) -> &[T] {
        let end = self.0.partition_point(|element| element < value);
        &self.0[..end]
    }

    /// The elements greater than `value`, ascending.
    pub fn above(&self, value: &T) -> &[T] {
        let start = self.0.partition_point(|element| element <= value);
        &self.0[start..]
    }
}

impl<'a, T> IntoIterator for &'a SmallSet<T> {
    type Item = &'a T;
    type IntoIter = std::slice::Iter<'a, T>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// Any sequence of inserts and removes leaves the same elements as a BTreeSet, and the
        /// ranges agree with BTreeSet's.
        #[test]
        fn behaves_like_a_btree_set(operations in proptest::collection::vec((any::<bool>(), 0u8..12), 0..60), probe in 0u8..12) {
            let mut small = SmallSet::default();
            let mut reference = BTreeSet::new();
            for (insert, value) in operations {
                if insert {
                    prop_assert_eq!(small.insert(value), reference.insert(value));
                } else {
                    prop_assert_eq!(small.remove(&value), reference.remove(&value));
                }
            }
            prop_assert_eq!(small.iter().copied().collect::<Vec<_>>(), reference.iter().copied().collect::<Vec<_>>());
            prop_assert_eq!(small.is_empty(), reference.is_empty());
            prop_assert_eq!(small.below(&probe).to_vec(), reference.range(..probe).copied().collect::<Vec<_>>());
            prop_assert_eq!(small.above(&probe).to_vec(), reference.range(probe + 1..).copied().collect::<Vec<_>>());
        }
    }
}
