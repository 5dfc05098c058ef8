//! Labels and annotations as the bot keeps them: a sorted, boxed slice of shared strings. An
//! incident of five alerts repeats the same names and values many times over (`alertname`,
//! `namespace`, `production`, the runbook URL); [`Interner`] makes every repeat within an
//! incident one allocation, so ten thousand live incidents fit in the memory a pod has.
//! On the wire (JSON) it is the plain object Alertmanager sends.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Name/value pairs, sorted by name, each name once.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Labels(Box<[(Arc<str>, Arc<str>)]>);

impl Labels {
    /// The value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .binary_search_by(|(k, _)| (**k).cmp(name))
            .ok()
            .map(|i| &*self.0[i].1)
    }

    /// Pairs in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (&**k, &**v))
    }

    /// Values in name order.
    pub fn values(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(_, v)| &**v)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The same pairs with every string taken from `pool` (shared with its other users).
    pub fn interned(&self, pool: &mut Interner) -> Labels {
        Labels(
            self.0
                .iter()
                .map(|(k, v)| (pool.get(k), pool.get(v)))
                .collect(),
        )
    }
}

impl<K: AsRef<str>, V: AsRef<str>> FromIterator<(K, V)> for Labels {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let sorted: BTreeMap<Arc<str>, Arc<str>> = iter
            .into_iter()
            .map(|(k, v)| (Arc::from(k.as_ref()), Arc::from(v.as_ref())))
            .collect();
        Labels(sorted.into_iter().collect())
    }
}

impl From<BTreeMap<String, String>> for Labels {
    fn from(map: BTreeMap<String, String>) -> Self {
        map.into_iter().collect()
    }
}

impl fmt::Debug for Labels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl Serialize for Labels {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.iter())
    }
}

impl<'de> Deserialize<'de> for Labels {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Pairs;
        impl<'de> serde::de::Visitor<'de> for Pairs {
            type Value = Labels;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object of strings")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Labels, A::Error> {
                let mut pairs: Vec<(Arc<str>, Arc<str>)> = Vec::new();
                while let Some((k, v)) =
                    map.next_entry::<std::borrow::Cow<'de, str>, std::borrow::Cow<'de, str>>()?
                {
                    pairs.push((shared(&k), shared(&v)));
                }
                // Sorted by name; of a repeated name the last value wins, as in a map.
                pairs.reverse();
                pairs.sort_by(|a, b| a.0.cmp(&b.0));
                pairs.dedup_by(|later, earlier| later.0 == earlier.0);
                Ok(Labels(pairs.into_boxed_slice()))
            }
        }
        d.deserialize_map(Pairs)
    }
}

thread_local! {
    /// The pool of [`sharing`], while one runs on this thread.
    static POOL: RefCell<Option<Interner>> = const { RefCell::new(None) };
}

/// Runs `f` (a deserialization) with a fresh pool: every [`Labels`] and [`shared_str`] read
/// inside it shares its strings, with no second copy made afterwards.
pub fn sharing<T>(f: impl FnOnce() -> T) -> T {
    POOL.with(|p| *p.borrow_mut() = Some(Interner::default()));
    let out = f();
    POOL.with(|p| *p.borrow_mut() = None);
    out
}

/// `s` from the pool of the running [`sharing`], or a new string outside one.
fn shared(s: &str) -> Arc<str> {
    POOL.with(|p| match p.borrow_mut().as_mut() {
        Some(pool) => pool.get(s),
        None => Arc::from(s),
    })
}

/// `deserialize_with` for a shared string (an alert's generator URL).
pub fn shared_str<'de, D: Deserializer<'de>>(d: D) -> Result<Arc<str>, D::Error> {
    let s = std::borrow::Cow::<'de, str>::deserialize(d)?;
    Ok(shared(&s))
}

/// Shared strings: the same text, one allocation.
#[derive(Debug, Default)]
pub struct Interner(HashSet<Arc<str>>);

impl Interner {
    /// The pool's copy of `s` (added when new).
    pub fn get(&mut self, s: &str) -> Arc<str> {
        if let Some(found) = self.0.get(s) {
            return found.clone();
        }
        let shared: Arc<str> = Arc::from(s);
        self.0.insert(shared.clone());
        shared
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups_serde_and_sharing() {
        let l: Labels = [
            ("severity", "critical"),
            ("alertname", "X"),
            ("namespace", "prod"),
        ]
        .into_iter()
        .collect();
        assert_eq!(l.get("namespace"), Some("prod"));
        assert_eq!(l.get("missing"), None);
        assert_eq!(
            l.iter().map(|(k, _)| k).collect::<Vec<_>>(),
            ["alertname", "namespace", "severity"]
        );
        let json = serde_json::to_string(&l).unwrap();
        assert_eq!(
            json,
            r#"{"alertname":"X","namespace":"prod","severity":"critical"}"#
        );
        assert_eq!(serde_json::from_str::<Labels>(&json).unwrap(), l);

        let mut pool = Interner::default();
        let a = l.interned(&mut pool);
        let b: Labels = [("namespace", "prod")].into_iter().collect();
        let b = b.interned(&mut pool);
        assert_eq!(a, l);
        assert!(Arc::ptr_eq(&a.0[1].1, &b.0[0].1), "one `prod` for both");
    }

    #[test]
    fn reading_inside_sharing_shares_and_a_repeated_name_keeps_the_last_value() {
        let (a, b): (Labels, Labels) = sharing(|| {
            (
                serde_json::from_str(r#"{"ns":"prod","x":"1","x":"2"}"#).unwrap(),
                serde_json::from_str(r#"{"env":"prod"}"#).unwrap(),
            )
        });
        assert_eq!(a.get("x"), Some("2"));
        assert_eq!(a.len(), 2);
        assert!(Arc::ptr_eq(&a.0[0].1, &b.0[0].1));
        let c: Labels = serde_json::from_str(r#"{"env":"prod"}"#).unwrap();
        assert!(
            !Arc::ptr_eq(&c.0[0].1, &b.0[0].1),
            "outside a sharing, no pool"
        );
    }
}
