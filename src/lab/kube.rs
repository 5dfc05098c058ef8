//! The simulated Kubernetes API server: bearer authentication, RBAC, and the handful of
//! endpoints the bot and Vault call (TokenRequest, TokenReview, self reviews, reads, Pods with
//! list and get, Deployments, StatefulSets, DaemonSets and CronJobs with PATCH and watch, and
//! the Vault operators' custom resources with list, get and PATCH). Lists are paged and
//! field-selected, in full or metadata-only ([`super::listing`]).

use std::sync::Arc;

use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::Response;
use serde_json::{Value, json};

use super::consumers::Crd;
use super::listing::{
    self, FieldSelector, METADATA_FIELDS, POD_FIELDS, Shape, get_param, list_response,
};
use super::tokens::API_AUDIENCE;
use super::wire::{json_response, q, status_response};
use super::world::Workload;
use super::{RecordedRequest, Shared, rollout};

/// An authenticated caller.
#[derive(Clone, Debug)]
pub(crate) struct Caller {
    pub username: String,
    pub uid: String,
    pub groups: Vec<String>,
}

fn unauthorized() -> Response {
    status_response(401, "Unauthorized", "Unauthorized", None)
}

/// 403 with the apiserver's `forbiddenMessage` text.
fn forbidden(
    user: &str,
    verb: &str,
    group: &str,
    resource: &str,
    sub: Option<&str>,
    name: Option<&str>,
    ns: Option<&str>,
) -> Response {
    let qualified = if group.is_empty() {
        resource.to_string()
    } else {
        format!("{resource}.{group}")
    };
    let full_resource = match sub {
        Some(s) => format!("{resource}/{s}"),
        None => resource.to_string(),
    };
    let scope = match ns {
        Some(ns) => format!("in the namespace {}", q(ns)),
        None => "at the cluster scope".to_string(),
    };
    let inner = format!(
        "User {} cannot {verb} resource {} in API group {} {scope}",
        q(user),
        q(&full_resource),
        q(group)
    );
    let message = match name {
        Some(n) => format!("{qualified} {} is forbidden: {inner}", q(n)),
        None => format!("{qualified} is forbidden: {inner}"),
    };
    let mut details = serde_json::Map::new();
    if let Some(n) = name {
        details.insert("name".into(), json!(n));
    }
    details.insert("group".into(), json!(group));
    details.insert("kind".into(), json!(resource));
    status_response(403, "Forbidden", &message, Some(Value::Object(details)))
}

fn not_found(group: &str, resource: &str, name: &str) -> Response {
    let qualified = if group.is_empty() {
        resource.to_string()
    } else {
        format!("{resource}.{group}")
    };
    let mut details = json!({"name": name, "kind": resource});
    if !group.is_empty() {
        details["group"] = json!(group);
    }
    status_response(
        404,
        "NotFound",
        &format!("{qualified} {} not found", q(name)),
        Some(details),
    )
}

fn no_route() -> Response {
    status_response(
        404,
        "NotFound",
        "the server could not find the requested resource",
        Some(json!({})),
    )
}

fn bad_request(message: &str) -> Response {
    status_response(400, "BadRequest", message, None)
}

fn parse_body(body: &[u8]) -> Result<Value, String> {
    if body.iter().all(|b| b.is_ascii_whitespace()) {
        return Ok(json!({}));
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(v) if v.is_object() => Ok(v),
        Ok(_) => {
            Err("couldn't get version/kind; json parse error: cannot unmarshal into Object".into())
        }
        Err(e) => Err(format!("couldn't get version/kind; json parse error: {e}")),
    }
}

fn bearer(headers: &HeaderMap) -> Option<String> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, tok) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| tok.trim().to_string())
}

fn authenticate(shared: &Shared, headers: &HeaderMap) -> Result<Caller, ()> {
    let Some(tok) = bearer(headers) else {
        return Ok(Caller {
            username: "system:anonymous".into(),
            uid: String::new(),
            groups: vec!["system:unauthenticated".into()],
        });
    };
    let now = chrono::Utc::now().timestamp();
    let world = shared.world();
    let (rec, _) = shared
        .tokens
        .validate(&tok, &[], now, |ns, n| {
            world
                .invalidated_sas
                .contains(&(ns.to_string(), n.to_string()))
        })
        .map_err(|_| ())?;
    Ok(Caller {
        username: rec.username(),
        uid: rec.uid.clone(),
        groups: sa_groups(&rec.namespace),
    })
}

fn sa_groups(ns: &str) -> Vec<String> {
    vec![
        "system:serviceaccounts".into(),
        format!("system:serviceaccounts:{ns}"),
        "system:authenticated".into(),
    ]
}

/// Entry point for every non-Vault request.
pub(crate) async fn handle(
    shared: Arc<Shared>,
    method: Method,
    path: String,
    query: Option<String>,
    headers: HeaderMap,
    body: Vec<u8>,
) -> Response {
    let caller = authenticate(&shared, &headers);
    shared.record(RecordedRequest {
        method: method.to_string(),
        path: path.clone(),
        query: query.clone(),
        content_type: headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
        body: String::from_utf8_lossy(&body).into_owned(),
        identity: match &caller {
            Ok(c) => c.username.clone(),
            Err(()) => "invalid".into(),
        },
    });
    let Ok(caller) = caller else {
        return unauthorized();
    };
    let params: Vec<(String, String)> = query
        .as_deref()
        .and_then(|q| serde_urlencoded::from_str(q).ok())
        .unwrap_or_default();
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let user = caller.username.as_str();
    let m = method.as_str();
    if m == "GET"
        && let Some(doc) = super::discovery::document(&segs)
    {
        return json_response(StatusCode::OK, &doc);
    }
    if let Some(resp) = custom_resource(&shared, user, m, &segs, &params, &headers, &body) {
        return resp;
    }
    match (m, segs.as_slice()) {
        ("GET", ["version"]) => json_response(StatusCode::OK, &version()),
        ("GET", ["api", "v1", "pods"]) => list_pods(&shared, user, None, &params, &headers),
        ("GET", ["api", "v1", "namespaces", ns, "pods"]) => {
            list_pods(&shared, user, Some(ns), &params, &headers)
        }
        ("GET", ["api", "v1", "namespaces", ns, "pods", name]) => {
            let world = shared.world();
            if !world.allowed(user, "get", "", "pods") {
                return forbidden(user, "get", "", "pods", None, Some(name), Some(ns));
            }
            match world.pods.get(&(ns.to_string(), name.to_string())) {
                Some(p) => json_response(StatusCode::OK, p),
                None => not_found("", "pods", name),
            }
        }
        ("GET", ["api", "v1", "namespaces", ns]) => {
            if !shared.world().allowed(user, "get", "", "namespaces") {
                return forbidden(user, "get", "", "namespaces", None, Some(ns), None);
            }
            if !shared.world().namespaces.iter().any(|n| n == ns) {
                return not_found("", "namespaces", ns);
            }
            json_response(StatusCode::OK, &namespace_json(ns))
        }
        (
            "GET",
            [
                "api",
                "v1",
                "namespaces",
                ns,
                kind @ ("serviceaccounts" | "secrets" | "configmaps"),
                name,
            ],
        ) => {
            let world = shared.world();
            if !world.allowed(user, "get", "", kind) {
                return forbidden(user, "get", "", kind, None, Some(name), Some(ns));
            }
            let k = (ns.to_string(), name.to_string());
            let found = match *kind {
                "serviceaccounts" => world.sa_uid(ns, name).map(|uid| {
                    json!({"kind": "ServiceAccount", "apiVersion": "v1", "metadata": {
                        "name": name, "namespace": ns, "uid": uid,
                        "resourceVersion": "1001", "creationTimestamp": super::world::CREATED}})
                }),
                "secrets" => world.secrets.get(&k).cloned(),
                _ => world.configmaps.get(&k).cloned(),
            };
            match found {
                Some(v) => json_response(StatusCode::OK, &v),
                None => not_found("", kind, name),
            }
        }
        (
            "POST",
            [
                "api",
                "v1",
                "namespaces",
                ns,
                "serviceaccounts",
                name,
                "token",
            ],
        ) => token_request(&shared, user, ns, name, &body),
        ("POST", ["apis", "authentication.k8s.io", "v1", "tokenreviews"]) => {
            if !shared
                .world()
                .allowed(user, "create", "authentication.k8s.io", "tokenreviews")
            {
                return forbidden(
                    user,
                    "create",
                    "authentication.k8s.io",
                    "tokenreviews",
                    None,
                    None,
                    None,
                );
            }
            token_review(&shared, &body)
        }
        ("POST", ["apis", "authentication.k8s.io", "v1", "selfsubjectreviews"]) => {
            if let Err(m) = parse_body(&body) {
                return bad_request(&m);
            }
            json_response(
                StatusCode::CREATED,
                &json!({"kind": "SelfSubjectReview", "apiVersion": "authentication.k8s.io/v1",
                    "metadata": {"creationTimestamp": null},
                    "status": {"userInfo": {"username": caller.username, "uid": caller.uid, "groups": caller.groups}}}),
            )
        }
        (
            "POST",
            [
                "apis",
                "authorization.k8s.io",
                "v1",
                "selfsubjectaccessreviews",
            ],
        ) => {
            let req = match parse_body(&body) {
                Ok(v) => v,
                Err(m) => return bad_request(&m),
            };
            let attrs = &req["spec"]["resourceAttributes"];
            let s = |k: &str| attrs[k].as_str().unwrap_or("").to_string();
            let mut resource = s("resource");
            if !s("subresource").is_empty() {
                resource = format!("{resource}/{}", s("subresource"));
            }
            let allowed = shared
                .world()
                .allowed(user, &s("verb"), &s("group"), &resource);
            let mut status = json!({"allowed": allowed});
            if allowed {
                status["reason"] = json!("RBAC: allowed by ClusterRoleBinding");
            }
            json_response(
                StatusCode::CREATED,
                &json!({"kind": "SelfSubjectAccessReview", "apiVersion": "authorization.k8s.io/v1",
                    "metadata": {"creationTimestamp": null}, "spec": req.get("spec").cloned().unwrap_or(json!({})),
                    "status": status}),
            )
        }
        ("GET", ["apis", group @ ("apps" | "batch"), "v1", resource])
            if let Some(kind) = Workload::from_resource(group, resource) =>
        {
            if !shared.world().allowed(user, "list", group, resource) {
                return forbidden(user, "list", group, resource, None, None, None);
            }
            list_or_watch(&shared, kind, None, &params, &headers)
        }
        (
            "GET",
            [
                "apis",
                group @ ("apps" | "batch"),
                "v1",
                "namespaces",
                ns,
                resource,
            ],
        ) if let Some(kind) = Workload::from_resource(group, resource) => {
            if !shared.world().allowed(user, "list", group, resource) {
                return forbidden(user, "list", group, resource, None, None, Some(ns));
            }
            list_or_watch(&shared, kind, Some(ns), &params, &headers)
        }
        (
            "GET",
            [
                "apis",
                group @ ("apps" | "batch"),
                "v1",
                "namespaces",
                ns,
                resource,
                name,
            ],
        ) if let Some(kind) = Workload::from_resource(group, resource) => {
            let world = shared.world();
            if !world.allowed(user, "get", group, resource) {
                return forbidden(user, "get", group, resource, None, Some(name), Some(ns));
            }
            match world.objects(kind).get(&(ns.to_string(), name.to_string())) {
                Some(d) => json_response(StatusCode::OK, d),
                None => not_found(group, resource, name),
            }
        }
        (
            "PATCH",
            [
                "apis",
                group @ ("apps" | "batch"),
                "v1",
                "namespaces",
                ns,
                resource,
                name,
            ],
        ) if let Some(kind) = Workload::from_resource(group, resource) => {
            if !shared.world().allowed(user, "patch", group, resource) {
                return forbidden(user, "patch", group, resource, None, Some(name), Some(ns));
            }
            let ct = content_type(&headers);
            if ct != "application/strategic-merge-patch+json"
                && ct != "application/merge-patch+json"
            {
                return status_response(
                    415,
                    "UnsupportedMediaType",
                    &format!(
                        "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json; got {ct:?}"
                    ),
                    None,
                );
            }
            let patch = match serde_json::from_slice::<Value>(&body) {
                Ok(v) if v.is_object() => v,
                Ok(_) | Err(_) => {
                    return bad_request("error decoding patch: invalid JSON object");
                }
            };
            rollout::patch_workload(&shared, kind, ns, name, &patch)
        }
        (
            "GET",
            [
                "apis",
                "coordination.k8s.io",
                "v1",
                "namespaces",
                ns,
                "leases",
                name,
            ],
        ) => {
            let world = shared.world();
            if !world.allowed(user, "get", "coordination.k8s.io", "leases") {
                return forbidden(
                    user,
                    "get",
                    "coordination.k8s.io",
                    "leases",
                    None,
                    Some(name),
                    Some(ns),
                );
            }
            match world.leases.get(&(ns.to_string(), name.to_string())) {
                Some(l) => json_response(StatusCode::OK, l),
                None => not_found("coordination.k8s.io", "leases", name),
            }
        }
        (
            "POST",
            [
                "apis",
                "coordination.k8s.io",
                "v1",
                "namespaces",
                ns,
                "leases",
            ],
        ) => lease_write(&shared, user, ns, None, &body),
        (
            "PUT",
            [
                "apis",
                "coordination.k8s.io",
                "v1",
                "namespaces",
                ns,
                "leases",
                name,
            ],
        ) => lease_write(&shared, user, ns, Some(name), &body),
        _ => no_route(),
    }
}

/// Create (`name` None) or replace a Lease, with the API server's optimistic concurrency:
/// a replace must carry the current `resourceVersion` (409 Conflict otherwise), a create of an
/// existing name is 409 AlreadyExists.
fn lease_write(shared: &Shared, user: &str, ns: &str, name: Option<&str>, body: &[u8]) -> Response {
    let verb = if name.is_some() { "update" } else { "create" };
    let mut world = shared.world();
    if !world.allowed(user, verb, "coordination.k8s.io", "leases") {
        return forbidden(
            user,
            verb,
            "coordination.k8s.io",
            "leases",
            None,
            name,
            Some(ns),
        );
    }
    let mut lease = match parse_body(body) {
        Ok(v) if v.is_object() => v,
        Ok(_) => return bad_request("a Lease must be a JSON object"),
        Err(m) => return bad_request(&m),
    };
    let Some(lease_name) = lease["metadata"]["name"].as_str().map(str::to_string) else {
        return bad_request("metadata.name: Required value");
    };
    let key = (ns.to_string(), lease_name.clone());
    match (name, world.leases.get(&key)) {
        (None, Some(_)) => {
            return status_response(
                409,
                "AlreadyExists",
                &format!("leases.coordination.k8s.io \"{lease_name}\" already exists"),
                None,
            );
        }
        (Some(_), None) => return not_found("coordination.k8s.io", "leases", &lease_name),
        (Some(_), Some(current)) => {
            if lease["metadata"]["resourceVersion"] != current["metadata"]["resourceVersion"] {
                return status_response(
                    409,
                    "Conflict",
                    &format!(
                        "Operation cannot be fulfilled on leases.coordination.k8s.io \"{lease_name}\": the object has been modified; please apply your changes to the latest version and try again"
                    ),
                    None,
                );
            }
        }
        (None, None) => {}
    }
    let rv = world.next_rv();
    lease["apiVersion"] = json!("coordination.k8s.io/v1");
    lease["kind"] = json!("Lease");
    lease["metadata"]["namespace"] = json!(ns);
    lease["metadata"]["resourceVersion"] = json!(rv.to_string());
    if lease["metadata"]["uid"].is_null() {
        lease["metadata"]["uid"] = json!(format!("lease-{rv}"));
    }
    world.leases.insert(key, lease.clone());
    json_response(
        if name.is_some() {
            StatusCode::OK
        } else {
            StatusCode::CREATED
        },
        &lease,
    )
}

fn version() -> Value {
    json!({
        "major": "1", "minor": "37", "emulationMajor": "1", "emulationMinor": "37",
        "minCompatibilityMajor": "1", "minCompatibilityMinor": "36",
        "gitVersion": "v1.37.0", "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean", "buildDate": "2026-08-26T00:00:00Z",
        "goVersion": "go1.26.1", "compiler": "gc", "platform": "linux/amd64"
    })
}

fn namespace_json(ns: &str) -> Value {
    json!({"kind": "Namespace", "apiVersion": "v1",
        "metadata": {"name": ns, "uid": super::world::stable_uid("Namespace", "", ns),
            "resourceVersion": "1001", "creationTimestamp": super::world::CREATED,
            "labels": {"kubernetes.io/metadata.name": ns}},
        "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}})
}

fn token_request(shared: &Shared, user: &str, ns: &str, name: &str, body: &[u8]) -> Response {
    if !shared
        .world()
        .allowed(user, "create", "", "serviceaccounts/token")
    {
        return forbidden(
            user,
            "create",
            "",
            "serviceaccounts",
            Some("token"),
            Some(name),
            Some(ns),
        );
    }
    let req = match parse_body(body) {
        Ok(v) => v,
        Err(m) => return bad_request(&m),
    };
    let Some(uid) = shared.world().sa_uid(ns, name) else {
        return not_found("", "serviceaccounts", name);
    };
    let spec = req.get("spec").cloned().unwrap_or(json!({}));
    let secs = spec["expirationSeconds"].as_i64().unwrap_or(3600);
    let invalid = |msg: &str| {
        status_response(
            422,
            "Invalid",
            &format!(
                "TokenRequest.authentication.k8s.io {} is invalid: spec.expirationSeconds: Invalid value: {secs}: {msg}",
                q(name)
            ),
            Some(
                json!({"name": name, "group": "authentication.k8s.io", "kind": "TokenRequest",
                "causes": [{"reason": "FieldValueInvalid", "message": format!("Invalid value: {secs}: {msg}"), "field": "spec.expirationSeconds"}]}),
            ),
        )
    };
    if secs < 600 {
        return invalid("may not specify a duration less than 10 minutes");
    }
    if secs > (1i64 << 32) {
        return invalid("may not specify a duration larger than 2^32 seconds");
    }
    let audiences: Vec<String> = spec["audiences"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .filter(|a: &Vec<String>| !a.is_empty())
        .unwrap_or_else(|| vec![API_AUDIENCE.to_string()]);
    let now = chrono::Utc::now();
    let token = match shared
        .tokens
        .issue(ns, name, &uid, audiences.clone(), now.timestamp(), secs)
    {
        Ok(t) => t,
        Err(e) => {
            return status_response(
                500,
                "InternalError",
                &format!("Internal error occurred: {e}"),
                None,
            );
        }
    };
    let exp = (now + chrono::Duration::seconds(secs))
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    json_response(
        StatusCode::CREATED,
        &json!({"kind": "TokenRequest", "apiVersion": "authentication.k8s.io/v1",
            "metadata": {"name": name, "namespace": ns, "creationTimestamp": null},
            "spec": {"audiences": audiences, "expirationSeconds": secs,
                "boundObjectRef": spec.get("boundObjectRef").cloned().unwrap_or(Value::Null)},
            "status": {"token": token, "expirationTimestamp": exp}}),
    )
}

fn token_review(shared: &Shared, body: &[u8]) -> Response {
    let req = match parse_body(body) {
        Ok(v) => v,
        Err(m) => return bad_request(&m),
    };
    let spec = req.get("spec").cloned().unwrap_or(json!({}));
    let token = spec["token"].as_str().unwrap_or("").to_string();
    if token.is_empty() {
        return bad_request("token is required for TokenReview in authentication");
    }
    let wanted: Vec<String> = spec["audiences"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let now = chrono::Utc::now().timestamp();
    let result = {
        let world = shared.world();
        shared.tokens.validate(&token, &wanted, now, |ns, n| {
            world
                .invalidated_sas
                .contains(&(ns.to_string(), n.to_string()))
        })
    };
    let status = match result {
        Ok((rec, audiences)) => json!({
            "authenticated": true,
            "user": {"username": rec.username(), "uid": rec.uid, "groups": sa_groups(&rec.namespace)},
            "audiences": audiences
        }),
        Err(problem) => json!({"user": {}, "error": problem.review_error()}),
    };
    json_response(
        StatusCode::CREATED,
        &json!({"kind": "TokenReview", "apiVersion": "authentication.k8s.io/v1",
            "metadata": {"creationTimestamp": null}, "spec": spec, "status": status}),
    )
}

fn content_type(headers: &HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// The routes of the operators' custom resources ([`Crd`]): `GET` lists, cluster-wide and (for
/// namespaced kinds) per namespace, `GET` of one object, and `PATCH` of the kinds a force-sync
/// annotates. `None` when `segs` is not one of them.
fn custom_resource(
    shared: &Shared,
    user: &str,
    method: &str,
    segs: &[&str],
    params: &[(String, String)],
    headers: &HeaderMap,
    body: &[u8],
) -> Option<Response> {
    let (crd, ns, name) = match segs {
        ["apis", g, v, resource] => (Crd::from_resource(g, v, resource)?, None, None),
        ["apis", g, v, resource, name] => {
            let crd = Crd::from_resource(g, v, resource).filter(|c| !c.namespaced())?;
            (crd, None, Some(*name))
        }
        ["apis", g, v, "namespaces", ns, resource] => {
            let crd = Crd::from_resource(g, v, resource).filter(|c| c.namespaced())?;
            (crd, Some(*ns), None)
        }
        ["apis", g, v, "namespaces", ns, resource, name] => {
            let crd = Crd::from_resource(g, v, resource).filter(|c| c.namespaced())?;
            (crd, Some(*ns), Some(*name))
        }
        _ => return None,
    };
    let (group, resource) = (crd.group(), crd.resource());
    let verb = match (method, name) {
        ("GET", None) => "list",
        ("GET", Some(_)) => "get",
        ("PATCH", Some(_)) if crd.patchable() => "patch",
        _ => {
            return Some(status_response(
                405,
                "MethodNotAllowed",
                "the server does not allow this method on the requested resource",
                Some(json!({})),
            ));
        }
    };
    if !shared.world().allowed(user, verb, group, resource) {
        return Some(forbidden(user, verb, group, resource, None, name, ns));
    }
    let key = (
        ns.unwrap_or_default().to_string(),
        name.unwrap_or_default().to_string(),
    );
    Some(match (verb, name) {
        ("list", _) => {
            if matches!(get_param(params, "watch"), Some("true" | "1")) {
                return Some(status_response(
                    405,
                    "MethodNotAllowed",
                    &format!("the lab does not watch {resource}.{group}"),
                    Some(json!({})),
                ));
            }
            let selector =
                match FieldSelector::parse(get_param(params, "fieldSelector"), METADATA_FIELDS) {
                    Ok(s) => s,
                    Err(msg) => return Some(bad_request(&msg)),
                };
            let world = shared.world();
            let empty = std::collections::BTreeMap::new();
            let store = world.custom.get(&crd).unwrap_or(&empty);
            let page = match listing::page(
                store,
                ns,
                |o| selector.matches(o),
                params,
                world.current_rv(),
            ) {
                Ok(p) => p,
                Err(msg) => return Some(bad_request(&msg)),
            };
            let shape = if listing::wants_metadata(headers) {
                Shape::Metadata
            } else {
                Shape::Full { type_meta: true }
            };
            list_response(crd.kind(), &crd.api_version(), page, shape)
        }
        ("get", Some(name)) => match shared.world().custom.get(&crd).and_then(|m| m.get(&key)) {
            Some(o) => json_response(StatusCode::OK, o),
            None => not_found(group, resource, name),
        },
        (_, Some(name)) => {
            // Custom resources take no strategic-merge patch (the apiextensions server's list).
            let ct = content_type(headers);
            if ct != "application/merge-patch+json" {
                return Some(status_response(
                    415,
                    "UnsupportedMediaType",
                    &format!(
                        "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml; got {ct:?}"
                    ),
                    None,
                ));
            }
            let patch = match serde_json::from_slice::<Value>(body) {
                Ok(v) if v.is_object() => v,
                Ok(_) | Err(_) => {
                    return Some(bad_request("error decoding patch: invalid JSON object"));
                }
            };
            let mut world = shared.world();
            let Some(current) = world.custom.get(&crd).and_then(|m| m.get(&key)).cloned() else {
                return Some(not_found(group, resource, name));
            };
            let mut next = current.clone();
            if let Some(meta) = patch.get("metadata") {
                for k in ["labels", "annotations"] {
                    if let Some(v) = meta.get(k) {
                        rollout::merge(&mut next["metadata"][k], v);
                        if next["metadata"][k]
                            .as_object()
                            .is_some_and(|m| m.is_empty())
                        {
                            next["metadata"].as_object_mut().map(|m| m.remove(k));
                        }
                    }
                }
            }
            if let Some(spec) = patch.get("spec") {
                rollout::merge(&mut next["spec"], spec);
            }
            if next["spec"] != current["spec"] {
                let generation = current["metadata"]["generation"].as_i64().unwrap_or(1) + 1;
                next["metadata"]["generation"] = json!(generation);
            }
            if next != current {
                let rv = world.next_rv();
                next["metadata"]["resourceVersion"] = json!(rv.to_string());
                world
                    .custom
                    .entry(crd)
                    .or_default()
                    .insert(key, next.clone());
            }
            json_response(StatusCode::OK, &next)
        }
        _ => no_route(),
    })
}

/// A `<Kind>List` of one workload kind, or (`?watch=true`) its watch stream; both narrowed
/// by namespace and by a `metadata.name`/`metadata.namespace` field selector.
fn list_or_watch(
    shared: &Arc<Shared>,
    kind: Workload,
    ns: Option<&str>,
    params: &[(String, String)],
    headers: &HeaderMap,
) -> Response {
    let param = |k: &str| get_param(params, k);
    let selector = match FieldSelector::parse(param("fieldSelector"), METADATA_FIELDS) {
        Ok(s) => s,
        Err(msg) => return bad_request(&msg),
    };
    let watch = matches!(param("watch"), Some("true" | "1"));
    if watch {
        let since = param("resourceVersion").and_then(|v| v.parse::<u64>().ok());
        let timeout = param("timeoutSeconds")
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(1800);
        return rollout::watch_response(shared.clone(), kind, ns, selector.name(), since, timeout);
    }
    let world = shared.world();
    let objects = world.objects(kind);
    let list = (kind.kind(), kind.api_version());
    paged_list(
        objects,
        world.current_rv(),
        ns,
        &selector,
        params,
        headers,
        list,
    )
}

/// One page of `objects` (of namespace `ns`, matching `selector`), whole or metadata-only as
/// the `Accept` header asks, as a `<kind>List` of `api_version` (`list`).
fn paged_list(
    objects: &std::collections::BTreeMap<(String, String), Value>,
    rv: u64,
    ns: Option<&str>,
    selector: &FieldSelector,
    params: &[(String, String)],
    headers: &HeaderMap,
    (kind, api_version): (&str, &str),
) -> Response {
    let page = match listing::page(objects, ns, |o| selector.matches(o), params, rv) {
        Ok(p) => p,
        Err(msg) => return bad_request(&msg),
    };
    let shape = if listing::wants_metadata(headers) {
        Shape::Metadata
    } else {
        Shape::Full { type_meta: false }
    };
    list_response(kind, api_version, page, shape)
}

/// A `PodList` (or its metadata only), cluster-wide or of namespace `ns`, paged and narrowed
/// by a field selector on the pod fields the API server supports ([`POD_FIELDS`]).
fn list_pods(
    shared: &Shared,
    user: &str,
    ns: Option<&str>,
    params: &[(String, String)],
    headers: &HeaderMap,
) -> Response {
    let world = shared.world();
    if !world.allowed(user, "list", "", "pods") {
        return forbidden(user, "list", "", "pods", None, None, ns);
    }
    if matches!(get_param(params, "watch"), Some("true" | "1")) {
        return status_response(
            405,
            "MethodNotAllowed",
            "the lab does not watch pods",
            Some(json!({})),
        );
    }
    let selector = match FieldSelector::parse(get_param(params, "fieldSelector"), POD_FIELDS) {
        Ok(s) => s,
        Err(msg) => return bad_request(&msg),
    };
    let rv = world.current_rv();
    paged_list(
        &world.pods,
        rv,
        ns,
        &selector,
        params,
        headers,
        ("Pod", "v1"),
    )
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use serde_json::Value;

    use super::super::pods::MIGRATION_JOB;
    use super::super::setup::APPS;
    use super::super::{Lab, LabOptions, Scenario};
    use super::listing::METADATA_LIST_CONTENT_TYPE;

    const METADATA_ACCEPT: &str =
        "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json";

    /// GET `path` as the bot: status, content type, body.
    async fn get(lab: &Lab, path: &str, accept: Option<&str>) -> (u16, String, Value) {
        let mut req = reqwest::Client::new()
            .get(format!("{}{path}", lab.kube_url()))
            .bearer_auth(lab.bot_kube_token());
        if let Some(a) = accept {
            req = req.header("accept", a);
        }
        let resp = req.send().await.expect("get");
        let code = resp.status().as_u16();
        let ct = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        (code, ct, resp.json().await.expect("json"))
    }

    fn names(list: &Value) -> Vec<String> {
        list["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|o| o["metadata"]["name"].as_str().unwrap().to_string())
            .collect()
    }

    #[tokio::test]
    async fn pods_are_listed_metadata_only_a_page_at_a_time() {
        let lab = Lab::start(
            Scenario::Healthy,
            LabOptions {
                bulk_workloads: 12,
                bulk_pods: 30,
                ..LabOptions::default()
            },
        )
        .await
        .expect("lab");
        let (code, ct, full) = get(&lab, "/api/v1/pods", None).await;
        assert_eq!((code, ct.as_str()), (200, "application/json"));
        assert_eq!(
            (&full["kind"], &full["apiVersion"]),
            (&"PodList".into(), &"v1".into())
        );
        let every: Vec<String> = names(&full);
        assert_eq!(every.len(), lab.pods("").len());
        assert_eq!(lab.pods("bulk").len(), 30);
        for p in full["items"].as_array().unwrap() {
            assert!(
                p.get("kind").is_none() && p.get("apiVersion").is_none(),
                "{p}"
            );
            assert!(p["spec"]["containers"].is_array() && p["status"]["phase"].is_string());
        }
        let typed: kube::core::ObjectList<k8s_openapi::api::core::v1::Pod> =
            serde_json::from_value(full.clone()).expect("typed pods");
        assert_eq!(typed.items.len(), every.len());

        // Metadata only, 7 at a time: every pod once, in the same order, nothing but metadata.
        let mut paged = Vec::new();
        let mut token: Option<String> = None;
        let mut pages = 0;
        loop {
            let path = match &token {
                None => "/api/v1/pods?limit=7".to_string(),
                Some(t) => format!("/api/v1/pods?limit=7&continue={t}"),
            };
            let (code, ct, page) = get(&lab, &path, Some(METADATA_ACCEPT)).await;
            assert_eq!(code, 200, "{page}");
            assert_eq!(ct, METADATA_LIST_CONTENT_TYPE);
            assert_eq!(page["kind"], "PartialObjectMetadataList");
            assert_eq!(page["apiVersion"], "meta.k8s.io/v1");
            assert_eq!(
                page["metadata"]["resourceVersion"],
                full["metadata"]["resourceVersion"]
            );
            let items = page["items"].as_array().unwrap();
            assert!(items.len() <= 7);
            for item in items {
                let keys: BTreeSet<&str> = item
                    .as_object()
                    .unwrap()
                    .keys()
                    .map(String::as_str)
                    .collect();
                assert_eq!(keys, BTreeSet::from(["kind", "apiVersion", "metadata"]));
                assert_eq!(item["kind"], "PartialObjectMetadata");
                assert_eq!(item["apiVersion"], "meta.k8s.io/v1");
                let stored = lab
                    .pods(item["metadata"]["namespace"].as_str().unwrap())
                    .into_iter()
                    .find(|p| p["metadata"]["name"] == item["metadata"]["name"])
                    .expect("a stored pod");
                assert_eq!(item["metadata"], stored["metadata"]);
            }
            let typed: kube::core::ObjectList<
                kube::core::PartialObjectMeta<k8s_openapi::api::core::v1::Pod>,
            > = serde_json::from_value(page.clone()).expect("kube-rs reads it");
            assert_eq!(typed.items.len(), items.len());
            paged.extend(names(&page));
            pages += 1;
            assert!(pages <= every.len(), "the pages end");
            token = page["metadata"]["continue"].as_str().map(str::to_string);
            if token.is_none() {
                break;
            }
        }
        assert_eq!(paged, every);
        assert_eq!(pages, every.len().div_ceil(7));

        // Per namespace, field-selected, and the workload lists too.
        let (_, _, bulk) = get(
            &lab,
            "/api/v1/namespaces/bulk/pods?fieldSelector=status.phase%3DRunning&limit=500",
            Some(METADATA_ACCEPT),
        )
        .await;
        assert_eq!(names(&bulk).len(), 30);
        assert!(bulk["metadata"].get("continue").is_none());
        let (code, ct, deployments) = get(
            &lab,
            "/apis/apps/v1/namespaces/production/deployments?limit=2",
            Some(METADATA_ACCEPT),
        )
        .await;
        assert_eq!((code, ct.as_str()), (200, METADATA_LIST_CONTENT_TYPE));
        assert_eq!(deployments["kind"], "PartialObjectMetadataList");
        assert_eq!(deployments["items"][0]["kind"], "PartialObjectMetadata");
        assert!(deployments["items"][0].get("spec").is_none());
        assert_eq!(names(&deployments).len(), 2);
        let next = deployments["metadata"]["continue"].as_str().expect("more");
        let (_, _, rest) = get(
            &lab,
            &format!("/apis/apps/v1/namespaces/production/deployments?limit=100&continue={next}"),
            Some(METADATA_ACCEPT),
        )
        .await;
        let (_, _, whole) = get(
            &lab,
            "/apis/apps/v1/namespaces/production/deployments",
            None,
        )
        .await;
        assert_eq!([names(&deployments), names(&rest)].concat(), names(&whole));
        assert_eq!(whole["kind"], "DeploymentList");
        lab.shutdown().await;
    }

    #[tokio::test]
    async fn status_phase_pending_selects_exactly_the_stuck_pods() {
        let pending = "/api/v1/pods?fieldSelector=status.phase%3DPending";
        let failing = Lab::start(
            Scenario::ReviewerJwtExpired,
            LabOptions {
                bulk_workloads: 6,
                bulk_pods: 12,
                ..LabOptions::default()
            },
        )
        .await
        .expect("lab");
        let (code, _, list) = get(&failing, pending, None).await;
        assert_eq!(code, 200);
        let stuck = names(&list);
        assert_eq!(stuck.len(), 3, "{stuck:?}");
        assert!(stuck.iter().any(|n| n == "ledger-db-0"), "{stuck:?}");
        assert!(
            stuck
                .iter()
                .any(|n| n.starts_with(&format!("{MIGRATION_JOB}-")))
        );
        assert!(
            stuck
                .iter()
                .any(|n| n.starts_with(&format!("{}-", APPS[0])))
        );
        for p in list["items"].as_array().unwrap() {
            assert_eq!(p["metadata"]["namespace"], "production");
            assert_eq!(p["status"]["phase"], "Pending");
            assert_eq!(
                p["status"]["initContainerStatuses"][0]["state"]["running"]["startedAt"]
                    .as_str()
                    .map(|_| "running"),
                Some("running"),
                "{p}"
            );
        }
        // The other selectors agree with it.
        let (_, _, all) = get(&failing, "/api/v1/pods", None).await;
        let (_, _, others) = get(
            &failing,
            "/api/v1/pods?fieldSelector=status.phase!%3DPending",
            None,
        )
        .await;
        assert_eq!(names(&others).len() + 3, names(&all).len());
        let (_, _, one) = get(
            &failing,
            "/api/v1/namespaces/production/pods?fieldSelector=status.phase%3DPending,metadata.name%3Dledger-db-0",
            None,
        )
        .await;
        assert_eq!(names(&one), ["ledger-db-0"]);
        let (_, _, none) = get(
            &failing,
            "/api/v1/namespaces/bulk/pods?fieldSelector=status.phase%3DPending",
            None,
        )
        .await;
        assert_eq!(names(&none), Vec::<String>::new());
        failing.shutdown().await;

        let healthy = Lab::start(Scenario::Healthy, LabOptions::default())
            .await
            .expect("lab");
        let (code, _, list) = get(&healthy, pending, None).await;
        assert_eq!(code, 200);
        assert_eq!(names(&list), Vec::<String>::new());
        let (_, _, all) = get(&healthy, "/api/v1/pods", None).await;
        assert_eq!(names(&all).len(), healthy.pods("").len());
        assert!(names(&all).contains(&"ledger-db-0".to_string()));
        healthy.shutdown().await;
    }

    #[tokio::test]
    async fn unsupported_field_selectors_are_a_400_and_pods_need_rbac() {
        let lab = Lab::start(Scenario::Healthy, LabOptions::default())
            .await
            .expect("lab");
        for (path, field) in [
            ("/api/v1/pods?fieldSelector=spec.foo%3Dx", "spec.foo"),
            (
                "/api/v1/namespaces/production/pods?fieldSelector=status.phase%3DPending,status.bar%3Dy",
                "status.bar",
            ),
            (
                "/apis/apps/v1/deployments?fieldSelector=status.phase%3DRunning",
                "status.phase",
            ),
        ] {
            let (code, _, body) = get(&lab, path, Some(METADATA_ACCEPT)).await;
            assert_eq!(code, 400, "{path}");
            assert_eq!(body["kind"], "Status");
            assert_eq!(body["reason"], "BadRequest");
            assert_eq!(
                body["message"],
                format!("field label not supported: {field}"),
                "{path}"
            );
        }
        let (code, _, body) = get(&lab, "/api/v1/pods?fieldSelector=status.phase", None).await;
        assert_eq!(code, 400);
        assert!(
            body["message"]
                .as_str()
                .unwrap()
                .contains("can't understand")
        );
        let (code, _, _) = get(&lab, "/api/v1/pods?limit=2&continue=forged", None).await;
        assert_eq!(code, 400);

        // The reviewer's ServiceAccount may not list pods.
        let reviewer = {
            use super::super::setup::{REVIEWER_NAMESPACE, REVIEWER_SA};
            let uid = lab
                .shared
                .world()
                .sa_uid(REVIEWER_NAMESPACE, REVIEWER_SA)
                .unwrap();
            let aud = vec![super::super::API_AUDIENCE.to_string()];
            let now = chrono::Utc::now().timestamp();
            lab.shared
                .tokens
                .issue(REVIEWER_NAMESPACE, REVIEWER_SA, &uid, aud, now, 3600)
                .expect("token")
        };
        let resp = reqwest::Client::new()
            .get(format!(
                "{}/api/v1/namespaces/production/pods",
                lab.kube_url()
            ))
            .bearer_auth(reviewer)
            .send()
            .await
            .expect("get");
        assert_eq!(resp.status().as_u16(), 403);
        let body: Value = resp.json().await.expect("json");
        assert_eq!(
            body["message"],
            "pods is forbidden: User \"system:serviceaccount:vault:vault-auth\" cannot list resource \"pods\" in API group \"\" in the namespace \"production\""
        );
        lab.shutdown().await;
    }
}
