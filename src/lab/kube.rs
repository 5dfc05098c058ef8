//! The simulated Kubernetes API server: bearer authentication, RBAC, and the handful of
//! endpoints the bot and Vault call (TokenRequest, TokenReview, self reviews, reads,
//! Deployments, StatefulSets, DaemonSets and CronJobs with PATCH and watch, and the Vault
//! operators' custom resources with list, get and PATCH).

use std::sync::Arc;

use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::Response;
use serde_json::{Value, json};

use super::consumers::Crd;
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
            list_or_watch(&shared, kind, None, &params)
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
            list_or_watch(&shared, kind, Some(ns), &params)
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
            let only = match get_param(params, "fieldSelector").map(parse_field_selector) {
                Some(Ok(n)) => n,
                Some(Err(msg)) => return Some(bad_request(&msg)),
                None => None,
            };
            let world = shared.world();
            let items: Vec<Value> = world
                .custom
                .get(&crd)
                .into_iter()
                .flatten()
                .filter(|((ons, oname), _)| {
                    ns.is_none_or(|n| n == ons) && only.as_deref().is_none_or(|n| n == oname)
                })
                .map(|(_, o)| o.clone())
                .collect();
            let (items, next) = match page(items, params) {
                Ok(p) => p,
                Err(msg) => return Some(bad_request(&msg)),
            };
            json_response(
                StatusCode::OK,
                &json!({"kind": format!("{}List", crd.kind()), "apiVersion": crd.api_version(),
                    "metadata": list_meta(world.current_rv(), next),
                    "items": items}),
            )
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

fn get_param<'a>(params: &'a [(String, String)], k: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(pk, _)| pk == k)
        .map(|(_, v)| v.as_str())
}

/// A `<Kind>List` of one workload kind, or (`?watch=true`) its watch stream; both narrowed
/// by namespace and by a `metadata.name` field selector.
fn list_or_watch(
    shared: &Arc<Shared>,
    kind: Workload,
    ns: Option<&str>,
    params: &[(String, String)],
) -> Response {
    let param = |k: &str| get_param(params, k);
    let field_selector = param("fieldSelector");
    let name = match field_selector.map(parse_field_selector) {
        Some(Ok(n)) => n,
        Some(Err(msg)) => return bad_request(&msg),
        None => None,
    };
    let watch = matches!(param("watch"), Some("true" | "1"));
    if watch {
        let since = param("resourceVersion").and_then(|v| v.parse::<u64>().ok());
        let timeout = param("timeoutSeconds")
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(1800);
        return rollout::watch_response(shared.clone(), kind, ns, name.as_deref(), since, timeout);
    }
    let world = shared.world();
    let items: Vec<Value> = world
        .objects(kind)
        .iter()
        .filter(|((dns, dname), _)| {
            ns.is_none_or(|n| n == dns) && name.as_deref().is_none_or(|n| n == dname)
        })
        .map(|(_, d)| {
            let mut d = d.clone();
            if let Some(o) = d.as_object_mut() {
                o.remove("kind");
                o.remove("apiVersion");
            }
            d
        })
        .collect();
    let (items, next) = match page(items, params) {
        Ok(p) => p,
        Err(msg) => return bad_request(&msg),
    };
    json_response(
        StatusCode::OK,
        &json!({"kind": format!("{}List", kind.kind()), "apiVersion": kind.api_version(),
            "metadata": list_meta(world.current_rv(), next), "items": items}),
    )
}

/// A list's `metadata`: its resourceVersion and, when a page was cut, the `continue` token.
fn list_meta(rv: u64, next: Option<String>) -> Value {
    let mut meta = json!({"resourceVersion": rv.to_string()});
    if let Some(token) = next {
        meta["continue"] = json!(token);
    }
    meta
}

/// One page of `items` as `limit` and `continue` ask (the API server's chunking): the page
/// and the token of the next one. The token is the offset of the next item, opaque to
/// clients.
fn page(
    items: Vec<Value>,
    params: &[(String, String)],
) -> Result<(Vec<Value>, Option<String>), String> {
    let from = match get_param(params, "continue").filter(|t| !t.is_empty()) {
        Some(t) => t
            .strip_prefix("lab-offset-")
            .and_then(|n| n.parse::<usize>().ok())
            .ok_or_else(|| format!("invalid continue token {t:?}"))?,
        None => 0,
    };
    let limit = get_param(params, "limit")
        .and_then(|l| l.parse::<usize>().ok())
        .filter(|l| *l > 0);
    let total = items.len();
    let page: Vec<Value> = items
        .into_iter()
        .skip(from)
        .take(limit.unwrap_or(usize::MAX))
        .collect();
    let end = from + page.len();
    let next = (limit.is_some() && end < total).then(|| format!("lab-offset-{end}"));
    Ok((page, next))
}

/// Supports `metadata.name=X` (and `metadata.name==X`); other fields are rejected like the
/// API server does.
fn parse_field_selector(sel: &str) -> Result<Option<String>, String> {
    let sel = sel.trim();
    if sel.is_empty() {
        return Ok(None);
    }
    let (field, value) = sel
        .split_once("==")
        .or_else(|| sel.split_once('='))
        .ok_or_else(|| format!("invalid selector: '{sel}'; can't understand '{sel}'"))?;
    if field.trim() == "metadata.name" {
        Ok(Some(value.trim().to_string()))
    } else if field.trim() == "metadata.namespace" {
        Ok(None)
    } else {
        Err(format!("field label not supported: {}", field.trim()))
    }
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

    #[test]
    fn lists_are_cut_into_pages_with_a_continue_token() {
        let items: Vec<Value> = (0..5).map(|i| json!(i)).collect();
        let (p1, next) = page(items.clone(), &params(&[("limit", "2")])).unwrap();
        assert_eq!(p1, [json!(0), json!(1)]);
        let next = next.expect("more");
        let (p2, next) = page(
            items.clone(),
            &params(&[("limit", "2"), ("continue", &next)]),
        )
        .unwrap();
        assert_eq!(p2, [json!(2), json!(3)]);
        let (p3, next) = page(
            items.clone(),
            &params(&[("limit", "2"), ("continue", &next.unwrap())]),
        )
        .unwrap();
        assert_eq!(p3, [json!(4)]);
        assert_eq!(next, None, "the last page has no token");
        let (all, next) = page(items.clone(), &params(&[])).unwrap();
        assert_eq!((all.len(), next), (5, None), "no limit, no paging");
        assert!(page(items, &params(&[("continue", "forged")])).is_err());
    }
}
