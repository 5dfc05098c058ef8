//! How the simulated API server lists: field selectors (`fieldSelector`), chunking (`limit`
//! and `continue`) over the stored objects by reference, and the list bodies, in full or as
//! the metadata-only `PartialObjectMetadataList` that `Accept:
//! application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1` asks for. Only the items
//! of the page asked for are written out.

use std::collections::BTreeMap;
use std::ops::Bound;

use axum::body::Body;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use base64::Engine as _;
use serde::ser::{Serialize, SerializeMap as _, Serializer};
use serde_json::{Value, json};

use super::world::Key;

/// The content type of a metadata-only list.
pub(crate) const METADATA_LIST_CONTENT_TYPE: &str =
    "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1";

/// The fields every kind can be selected by.
pub(crate) const METADATA_FIELDS: &[&str] = &["metadata.name", "metadata.namespace"];

/// The fields Pods can be selected by (the API server's pod field set, minus the booleans).
pub(crate) const POD_FIELDS: &[&str] = &[
    "metadata.name",
    "metadata.namespace",
    "spec.nodeName",
    "spec.restartPolicy",
    "spec.schedulerName",
    "spec.serviceAccountName",
    "status.phase",
    "status.podIP",
    "status.nominatedNodeName",
];

/// One term of a field selector: `field=value`, `field==value` or `field!=value`.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Requirement {
    field: String,
    value: String,
    equal: bool,
}

/// A parsed `fieldSelector`: every requirement must hold.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct FieldSelector(Vec<Requirement>);

/// Splits on the commas that are not escaped with `\`.
fn split_terms(sel: &str) -> Vec<String> {
    let mut terms = Vec::new();
    let mut term = String::new();
    let mut escaped = false;
    for c in sel.chars() {
        if c == ',' && !escaped {
            terms.push(std::mem::take(&mut term));
        } else {
            term.push(c);
        }
        escaped = c == '\\' && !escaped;
    }
    terms.push(term);
    terms
}

/// `\,` `\=` `\\` as the characters they escape.
fn unescape(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    let mut chars = v.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.extend(chars.next()),
            c => out.push(c),
        }
    }
    out
}

impl FieldSelector {
    /// Parses `sel` as the API server does (`fields.ParseSelector`: the leftmost of `!=`, `==`,
    /// `=` splits a term) and rejects a field outside `supported` with its 400 message.
    pub fn parse(sel: Option<&str>, supported: &[&str]) -> Result<FieldSelector, String> {
        let mut out = Vec::new();
        for term in split_terms(sel.unwrap_or_default()) {
            let term = term.trim();
            if term.is_empty() {
                continue;
            }
            let split = term.char_indices().find_map(|(i, _)| {
                let rest = &term[i..];
                [("!=", false), ("==", true), ("=", true)]
                    .into_iter()
                    .find(|(op, _)| rest.starts_with(op))
                    .map(|(op, equal)| (&term[..i], &rest[op.len()..], equal))
            });
            let Some((field, value, equal)) = split else {
                return Err(format!(
                    "invalid selector: '{}'; can't understand '{term}'",
                    sel.unwrap_or_default()
                ));
            };
            let field = field.trim();
            if !supported.contains(&field) {
                return Err(format!("field label not supported: {field}"));
            }
            out.push(Requirement {
                field: field.to_string(),
                value: unescape(value.trim()),
                equal,
            });
        }
        Ok(FieldSelector(out))
    }

    /// Whether `obj` satisfies every requirement (a missing field reads as `""`).
    pub fn matches(&self, obj: &Value) -> bool {
        self.0.iter().all(|r| {
            let got = r
                .field
                .split('.')
                .try_fold(obj, |v, k| v.get(k))
                .and_then(Value::as_str)
                .unwrap_or_default();
            (got == r.value) == r.equal
        })
    }

    /// The name a `metadata.name=X` requirement asks for (what a watch narrows to).
    pub fn name(&self) -> Option<&str> {
        self.0
            .iter()
            .find(|r| r.equal && r.field == "metadata.name")
            .map(|r| r.value.as_str())
    }
}

pub(crate) fn get_param<'a>(params: &'a [(String, String)], k: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(pk, _)| pk == k)
        .map(|(_, v)| v.as_str())
}

/// One page of a list: the items (borrowed from the store), the list's resourceVersion, and
/// the `continue` token of the next page when the page was cut.
pub(crate) struct Page<'a> {
    pub items: Vec<&'a Value>,
    pub rv: u64,
    pub next: Option<String>,
}

/// The API server's continue token: base64url of `{"v","rv","start"}`, `start` being the key
/// after which the next page begins.
fn encode_continue(rv: u64, after: &Key) -> String {
    let start = format!("{}/{}\u{0}", after.0, after.1);
    let raw = json!({"v": "meta.k8s.io/v1", "rv": rv, "start": start}).to_string();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
}

fn decode_continue(token: &str) -> Result<(u64, Key), String> {
    let invalid = |why: &str| format!("invalid continue token: {why}");
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token.trim_end_matches('='))
        .map_err(|e| invalid(&e.to_string()))?;
    let v: Value = serde_json::from_slice(&raw).map_err(|e| invalid(&e.to_string()))?;
    if v["v"] != "meta.k8s.io/v1" {
        return Err(invalid(
            "continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)",
        ));
    }
    let rv = v["rv"]
        .as_u64()
        .ok_or_else(|| invalid("continue key is not valid: missing resourceVersion"))?;
    let start = v["start"].as_str().unwrap_or_default();
    let (ns, name) = start
        .trim_end_matches('\u{0}')
        .split_once('/')
        .ok_or_else(|| invalid("continue key is not valid: no start key"))?;
    Ok((rv, (ns.to_string(), name.to_string())))
}

/// The page of `store` that `limit` and `continue` in `params` ask for, of the objects in
/// namespace `ns` (all when `None`) that `keep` accepts, listed as of resourceVersion `rv`
/// (a continued list keeps the first page's). Walks the store from the token's key and
/// borrows only the page's items: a page costs what it holds, not the whole store.
pub(crate) fn page<'a>(
    store: &'a BTreeMap<Key, Value>,
    ns: Option<&str>,
    keep: impl Fn(&Value) -> bool,
    params: &[(String, String)],
    rv: u64,
) -> Result<Page<'a>, String> {
    let after = match get_param(params, "continue").filter(|t| !t.is_empty()) {
        Some(t) => Some(decode_continue(t)?),
        None => None,
    };
    let limit = get_param(params, "limit")
        .and_then(|l| l.parse::<usize>().ok())
        .filter(|l| *l > 0);
    let ns_start = ns.map(|n| (n.to_string(), String::new()));
    let start = match (&after, &ns_start) {
        (Some((_, k)), Some(s)) if k < s => Bound::Included(s.clone()),
        (Some((_, k)), _) => Bound::Excluded(k.clone()),
        (None, Some(s)) => Bound::Included(s.clone()),
        (None, None) => Bound::Unbounded,
    };
    let mut matching = store
        .range((start, Bound::Unbounded))
        .take_while(|((ons, _), _)| ns.is_none_or(|n| n == ons))
        .filter(|(_, o)| keep(o));
    let mut items = Vec::new();
    let mut last = None;
    for (k, o) in matching.by_ref().take(limit.unwrap_or(usize::MAX)) {
        items.push(o);
        last = Some(k);
    }
    let rv = after.as_ref().map_or(rv, |(rv, _)| *rv);
    let next = match (limit, last) {
        (Some(_), Some(k)) if matching.next().is_some() => Some(encode_continue(rv, k)),
        _ => None,
    };
    Ok(Page { items, rv, next })
}

/// Whether the client asked for a metadata-only list.
pub(crate) fn wants_metadata(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("as=PartialObjectMetadataList"))
}

/// A stored object as a list item: built-in kinds' items go without `kind`/`apiVersion`.
struct Item<'a> {
    object: &'a Value,
    type_meta: bool,
}

impl Serialize for Item<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.object {
            Value::Object(m) if !self.type_meta => {
                let mut map = s.serialize_map(None)?;
                for (k, v) in m {
                    if k != "kind" && k != "apiVersion" {
                        map.serialize_entry(k, v)?;
                    }
                }
                map.end()
            }
            other => other.serialize(s),
        }
    }
}

/// An object's metadata as a `PartialObjectMetadata`.
#[derive(serde::Serialize)]
struct MetadataItem<'a> {
    kind: &'static str,
    #[serde(rename = "apiVersion")]
    api_version: &'static str,
    metadata: &'a Value,
}

#[derive(serde::Serialize)]
struct List<'a, T> {
    kind: &'a str,
    #[serde(rename = "apiVersion")]
    api_version: &'a str,
    metadata: Value,
    items: Vec<T>,
}

/// The list's `metadata`: its resourceVersion and, when the page was cut, `continue`.
fn list_meta(rv: u64, next: Option<String>) -> Value {
    let mut meta = json!({"resourceVersion": rv.to_string()});
    if let Some(token) = next {
        meta["continue"] = json!(token);
    }
    meta
}

/// How a list is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Shape {
    /// `<Kind>List` of whole objects; `type_meta` keeps each item's `kind`/`apiVersion` (custom
    /// resources), built-in kinds leave them out.
    Full { type_meta: bool },
    /// `PartialObjectMetadataList`.
    Metadata,
}

/// The 200 response of a list page of `kind` (e.g. `Pod`) in `api_version`.
pub(crate) fn list_response(
    kind: &str,
    api_version: &str,
    page: Page<'_>,
    shape: Shape,
) -> Response {
    let meta = list_meta(page.rv, page.next);
    let (body, content_type) = match shape {
        Shape::Full { type_meta } => (
            serde_json::to_vec(&List {
                kind: &format!("{kind}List"),
                api_version,
                metadata: meta,
                items: page
                    .items
                    .into_iter()
                    .map(|object| Item { object, type_meta })
                    .collect(),
            }),
            "application/json",
        ),
        Shape::Metadata => (
            serde_json::to_vec(&List {
                kind: "PartialObjectMetadataList",
                api_version: "meta.k8s.io/v1",
                metadata: meta,
                items: page
                    .items
                    .into_iter()
                    .map(|o| MetadataItem {
                        kind: "PartialObjectMetadata",
                        api_version: "meta.k8s.io/v1",
                        metadata: &o["metadata"],
                    })
                    .collect(),
            }),
            METADATA_LIST_CONTENT_TYPE,
        ),
    };
    let mut body = body.unwrap_or_default();
    body.push(b'\n');
    let mut resp = Response::new(Body::from(body));
    *resp.status_mut() = StatusCode::OK;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(content_type),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn store(keys: &[(&str, &str)]) -> BTreeMap<Key, Value> {
        keys.iter()
            .map(|(ns, n)| {
                (
                    (ns.to_string(), n.to_string()),
                    json!({"metadata": {"namespace": ns, "name": n}, "status": {"phase": if n.ends_with('p') { "Pending" } else { "Running" }}}),
                )
            })
            .collect()
    }

    fn names(p: &Page<'_>) -> Vec<String> {
        p.items
            .iter()
            .map(|o| o["metadata"]["name"].as_str().unwrap().to_string())
            .collect()
    }

    #[test]
    fn lists_are_cut_into_pages_with_a_continue_token() {
        let s = store(&[("a", "0"), ("a", "1"), ("b", "2"), ("b", "3"), ("c", "4")]);
        let all = |_: &Value| true;
        let p1 = page(&s, None, all, &params(&[("limit", "2")]), 7).unwrap();
        assert_eq!(names(&p1), ["0", "1"]);
        let next = p1.next.expect("more");
        let p2 = page(
            &s,
            None,
            all,
            &params(&[("limit", "2"), ("continue", &next)]),
            9,
        )
        .unwrap();
        assert_eq!(names(&p2), ["2", "3"]);
        assert_eq!(
            p2.rv, 7,
            "a continued list keeps the first page's resourceVersion"
        );
        let next = p2.next.expect("more");
        let p3 = page(
            &s,
            None,
            all,
            &params(&[("limit", "2"), ("continue", &next)]),
            9,
        )
        .unwrap();
        assert_eq!(names(&p3), ["4"]);
        assert_eq!(p3.next, None, "the last page has no token");
        let whole = page(&s, None, all, &params(&[]), 7).unwrap();
        assert_eq!(
            (whole.items.len(), whole.next),
            (5, None),
            "no limit, no paging"
        );
        let exact = page(&s, None, all, &params(&[("limit", "5")]), 7).unwrap();
        assert_eq!(exact.next, None, "nothing left after an exact page");
        assert!(page(&s, None, all, &params(&[("continue", "forged")]), 7).is_err());

        // A namespace and a filter narrow before the cut.
        let in_b = page(&s, Some("b"), all, &params(&[("limit", "1")]), 7).unwrap();
        assert_eq!(names(&in_b), ["2"]);
        let next = in_b.next.expect("more in b");
        let rest = page(
            &s,
            Some("b"),
            all,
            &params(&[("limit", "1"), ("continue", &next)]),
            7,
        )
        .unwrap();
        assert_eq!((names(&rest), rest.next), (vec!["3".to_string()], None));
        let odd = |o: &Value| {
            o["metadata"]["name"]
                .as_str()
                .unwrap()
                .parse::<u8>()
                .unwrap()
                % 2
                == 1
        };
        let p = page(&s, None, odd, &params(&[("limit", "1")]), 7).unwrap();
        assert_eq!(names(&p), ["1"]);
        let p = page(
            &s,
            None,
            odd,
            &params(&[("limit", "1"), ("continue", &p.next.unwrap())]),
            7,
        )
        .unwrap();
        assert_eq!((names(&p), p.next), (vec!["3".to_string()], None));
    }

    #[test]
    fn field_selectors_parse_like_the_api_server() {
        let pod =
            json!({"metadata": {"name": "a", "namespace": "n"}, "status": {"phase": "Pending"}});
        let sel = |s: &str| FieldSelector::parse(Some(s), POD_FIELDS);
        assert!(sel("status.phase=Pending").unwrap().matches(&pod));
        assert!(sel("status.phase==Pending").unwrap().matches(&pod));
        assert!(!sel("status.phase!=Pending").unwrap().matches(&pod));
        assert!(
            sel("status.phase!=Running,metadata.name=a")
                .unwrap()
                .matches(&pod)
        );
        assert!(
            !sel("status.phase!=Running,metadata.namespace=m")
                .unwrap()
                .matches(&pod)
        );
        assert!(
            sel("spec.nodeName=").unwrap().matches(&pod),
            "missing reads as empty"
        );
        assert!(sel("").unwrap().matches(&pod));
        assert_eq!(
            sel("status.phase=Pending,spec.foo=x").unwrap_err(),
            "field label not supported: spec.foo"
        );
        assert_eq!(
            sel("status.phase").unwrap_err(),
            "invalid selector: 'status.phase'; can't understand 'status.phase'"
        );
        assert_eq!(
            FieldSelector::parse(Some("status.phase=Running"), METADATA_FIELDS).unwrap_err(),
            "field label not supported: status.phase"
        );
        let named = FieldSelector::parse(Some("metadata.name=x\\,y"), METADATA_FIELDS).unwrap();
        assert_eq!(named.name(), Some("x,y"));
    }
}
