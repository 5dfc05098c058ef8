//! The simulated Vault HTTP API (`/v1/...`): health and seal status, auth mounts and the
//! kubernetes method's config/role/login, tokens, ACL policies, KV v2 and `sys/monitor`, with
//! Vault's status codes and error bodies.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use serde_json::{Value, json};

use super::Shared;
use super::login;
use super::monitor::Level;
use super::tokens::random_uuid;
use super::vault_state::{
    AuthMount, DEFAULT_TTL, Role, StoredConfig, VaultToken, bool_field, duration_field, list_field,
    str_field,
};
use super::wire::{auth_response, envelope, vault_error, with_headers};

/// The server version the lab reports (the OpenBao release its answers were checked against).
pub(crate) const VERSION: &str = "2.7.2";
const CLUSTER_NAME: &str = "vault-cluster-1ab7c0de";
const CLUSTER_ID: &str = "5f1e8a6e-1b9c-4d1e-9a55-0c0ffee1ab00";
const POLICY_DENIED: &str = "1 error occurred:\n\t* permission denied\n\n";

fn raw(status: StatusCode, body: &Value) -> Response {
    with_headers(status, format!("{body}\n"))
}

fn no_content() -> Response {
    let mut resp = Response::new(Body::empty());
    *resp.status_mut() = StatusCode::NO_CONTENT;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    resp
}

fn data_response(data: Value) -> Response {
    envelope(&data, &Value::Null)
}

fn not_found_empty() -> Response {
    vault_error(StatusCode::NOT_FOUND, &[])
}

fn no_handler(path: &str) -> Response {
    vault_error(
        StatusCode::NOT_FOUND,
        &[&format!(
            "no handler for route {path:?}. route entry not found."
        )],
    )
}

/// Parses a request body like Vault: JSON object, form data, or nothing.
/// `Err` is the text after `failed to decode JSON input: `.
fn parse_body(headers: &HeaderMap, body: &[u8]) -> Result<Value, String> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if ct.starts_with("application/x-www-form-urlencoded") {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body).unwrap_or_default();
        let map: serde_json::Map<String, Value> = pairs
            .into_iter()
            .map(|(k, v)| (k, Value::String(v)))
            .collect();
        return Ok(Value::Object(map));
    }
    let trimmed: Vec<u8> = body
        .iter()
        .copied()
        .skip_while(|b| b.is_ascii_whitespace())
        .collect();
    if trimmed.is_empty() {
        return Ok(json!({}));
    }
    let fail = |m: String| Err(m);
    match serde_json::from_slice::<Value>(&trimmed) {
        Ok(Value::Object(o)) => Ok(Value::Object(o)),
        Ok(Value::Null) => Ok(json!({})),
        Ok(other) => {
            let kind = match other {
                Value::Array(_) => "array",
                Value::String(_) => "string",
                Value::Number(_) => "number",
                _ => "bool",
            };
            fail(format!(
                "json: cannot unmarshal {kind} into Go value of type map[string]interface {{}}"
            ))
        }
        Err(e) if e.is_eof() => fail("unexpected EOF".into()),
        Err(e) => {
            let first = trimmed[0] as char;
            if !matches!(first, '{' | '[' | '"' | '-' | '0'..='9' | 't' | 'f' | 'n') {
                fail(format!(
                    "invalid character '{first}' looking for beginning of value"
                ))
            } else {
                let col = e.column().saturating_sub(1);
                let line: &[u8] = trimmed
                    .split(|b| *b == b'\n')
                    .nth(e.line().saturating_sub(1))
                    .unwrap_or(&[]);
                let c = line.get(col).map(|b| *b as char).unwrap_or(' ');
                fail(format!(
                    "invalid character '{c}' looking for beginning of object key string"
                ))
            }
        }
    }
}

fn query_params(query: Option<&str>) -> Vec<(String, String)> {
    query
        .and_then(|q| serde_urlencoded::from_str(q).ok())
        .unwrap_or_default()
}

fn health(shared: &Shared, head: bool, params: &[(String, String)]) -> Response {
    let get = |k: &str| {
        params
            .iter()
            .find(|(pk, _)| pk == k)
            .map(|(_, v)| v.as_str())
    };
    let code = |k: &str, default: u16| -> Result<u16, ()> {
        match get(k) {
            None | Some("") => Ok(default),
            Some(v) => v.parse::<u16>().map_err(|_| ()).and_then(|c| {
                if (100..=999).contains(&c) {
                    Ok(c)
                } else {
                    Err(())
                }
            }),
        }
    };
    for b in ["standbyok", "perfstandbyok"] {
        if let Some(v) = get(b)
            && !v.is_empty()
            && !matches!(
                v,
                "true"
                    | "false"
                    | "1"
                    | "0"
                    | "t"
                    | "f"
                    | "T"
                    | "F"
                    | "TRUE"
                    | "FALSE"
                    | "True"
                    | "False"
            )
        {
            return not_found_empty_400();
        }
    }
    let sealed = shared.vault().sealed;
    let status = if sealed {
        code("sealedcode", 503)
    } else {
        code("activecode", 200)
    };
    let (Ok(status), Ok(_), Ok(_)) = (status, code("uninitcode", 501), code("standbycode", 429))
    else {
        return not_found_empty_400();
    };
    let now = chrono::Utc::now().timestamp();
    let body = if sealed {
        json!({"initialized": true, "sealed": true, "standby": true,
            "replication_performance_mode": "unknown", "replication_dr_mode": "unknown",
            "server_time_utc": now, "version": VERSION})
    } else {
        json!({"initialized": true, "sealed": false, "standby": false,
            "replication_performance_mode": "disabled", "replication_dr_mode": "disabled",
            "server_time_utc": now, "version": VERSION, "cluster_name": CLUSTER_NAME, "cluster_id": CLUSTER_ID})
    };
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    if head {
        let mut r = raw(status, &json!({}));
        *r.body_mut() = Body::empty();
        return r;
    }
    raw(status, &body)
}

fn not_found_empty_400() -> Response {
    vault_error(StatusCode::BAD_REQUEST, &[])
}

fn seal_status(shared: &Shared) -> Response {
    let sealed = shared.vault().sealed;
    let mut v = json!({"type": "shamir", "initialized": true, "sealed": sealed, "t": 1, "n": 1,
        "progress": 0, "nonce": "", "recovery_seal": false, "version": VERSION,
        "commit_date": "2026-10-26T20:32:27Z", "migration": false, "storage_type": "inmem"});
    if !sealed {
        v["cluster_name"] = json!(CLUSTER_NAME);
        v["cluster_id"] = json!(CLUSTER_ID);
    }
    raw(StatusCode::OK, &v)
}

fn mount_entry(m: &AuthMount) -> Value {
    json!({"accessor": m.accessor,
        "config": {"default_lease_ttl": 0, "force_no_cache": false, "max_lease_ttl": 0, "token_type": "default-service"},
        "description": "", "external_entropy_access": false, "local": false, "options": null,
        "plugin_version": "", "running_plugin_version": format!("v{VERSION}+builtin.bao"),
        "running_sha256": "", "seal_wrap": false, "type": "kubernetes", "uuid": m.uuid})
}

fn sys_auth(shared: &Shared) -> Response {
    let vault = shared.vault();
    let mut data = serde_json::Map::new();
    data.insert("token/".into(), json!({"accessor": "auth_token_0c1a2b3d",
        "config": {"default_lease_ttl": 0, "force_no_cache": false, "max_lease_ttl": 0, "token_type": "default-service"},
        "description": "token based credentials", "external_entropy_access": false, "local": false,
        "options": null, "plugin_version": "", "running_plugin_version": format!("v{VERSION}+builtin.bao"),
        "running_sha256": "", "seal_wrap": false, "type": "token", "uuid": "0b5e7a8c-3c1d-4a52-8d43-1f0e2d3c4b5a"}));
    for (path, m) in &vault.auth {
        data.insert(format!("{path}/"), mount_entry(m));
    }
    // sys/auth is one of the routes whose data is duplicated at the top level.
    let mut top = data.clone();
    top.insert("request_id".into(), json!(random_uuid()));
    top.insert("lease_id".into(), json!(""));
    top.insert("renewable".into(), json!(false));
    top.insert("lease_duration".into(), json!(0));
    top.insert("data".into(), Value::Object(data));
    top.insert("wrap_info".into(), Value::Null);
    top.insert("warnings".into(), Value::Null);
    top.insert("auth".into(), Value::Null);
    raw(StatusCode::OK, &Value::Object(top))
}

fn token_lookup(token: &VaultToken) -> Response {
    let created = token.created;
    let ttl_left = if token.ttl == 0 {
        0
    } else {
        (token.ttl as i64 - (chrono::Utc::now() - created).num_seconds()).max(0)
    };
    let expire = if token.ttl == 0 {
        Value::Null
    } else {
        json!(
            (created + chrono::Duration::seconds(token.ttl as i64))
                .format("%Y-%m-%dT%H:%M:%S%.9fZ")
                .to_string()
        )
    };
    data_response(json!({
        "accessor": token.accessor, "creation_time": created.timestamp(), "creation_ttl": token.ttl,
        "display_name": token.display_name, "entity_id": "", "expire_time": expire,
        "explicit_max_ttl": 0, "id": token.id,
        "issue_time": created.format("%Y-%m-%dT%H:%M:%S%.9fZ").to_string(),
        "meta": token.meta.clone().unwrap_or(Value::Null), "num_uses": 0, "orphan": token.is_root() || token.path.contains("/login"),
        "path": token.path, "policies": token.policies, "renewable": token.ttl > 0,
        "ttl": ttl_left, "type": "service"
    }))
}

/// Entry point for `/v1/<path>`.
pub(crate) async fn handle(
    shared: Arc<Shared>,
    method: &str,
    path: &str,
    query: Option<&str>,
    headers: &HeaderMap,
    body: &[u8],
) -> Response {
    let params = query_params(query);
    let path = path.trim_matches('/');
    let is_list = method == "LIST"
        || (method == "GET" && params.iter().any(|(k, v)| k == "list" && v == "true"));
    match (method, path) {
        ("GET" | "HEAD", "sys/health") => return health(&shared, method == "HEAD", &params),
        ("GET", "sys/seal-status") => return seal_status(&shared),
        _ => {}
    }
    if method == "PATCH" {
        let ct = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !ct.starts_with("application/merge-patch+json") {
            return vault_error(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                &[&format!(
                    "PATCH requires Content-Type of application/merge-patch+json, provided {ct}"
                )],
            );
        }
    }
    let data = if matches!(method, "POST" | "PUT" | "PATCH") {
        match parse_body(headers, body) {
            Ok(d) => d,
            Err(m) => {
                return vault_error(
                    StatusCode::BAD_REQUEST,
                    &[&format!("failed to decode JSON input: {m}")],
                );
            }
        }
    } else {
        json!({})
    };
    if shared.vault().sealed {
        return vault_error(StatusCode::SERVICE_UNAVAILABLE, &["Vault is sealed"]);
    }
    if method == "GET" && path == "sys/leader" {
        return raw(
            StatusCode::OK,
            &json!({"ha_enabled": false, "is_self": false,
            "active_time": "0001-01-01T00:00:00Z", "leader_address": "", "leader_cluster_address": "",
            "performance_standby": false, "performance_standby_last_remote_wal": 0}),
        );
    }
    let segs: Vec<&str> = path.split('/').collect();
    if let ["auth", mount, "login"] = segs.as_slice()
        && matches!(method, "POST" | "PUT")
        && shared.vault().auth.contains_key(*mount)
    {
        return login::login(&shared, mount, &data).await;
    }
    // Everything else needs a known token.
    let token_id = headers
        .get("x-vault-token")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or_else(|| {
            headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
                .map(str::to_string)
        });
    let Some(token) = token_id.and_then(|t| shared.vault().tokens.get(&t).cloned()) else {
        return vault_error(StatusCode::FORBIDDEN, &["permission denied"]);
    };
    let cap = match method {
        _ if is_list => "list",
        "GET" | "HEAD" => "read",
        "DELETE" => "delete",
        "PATCH" => "patch",
        _ => "update",
    };
    let allowed = |p: &str, cap: &str| {
        let caps = shared.vault().capabilities(&token, p);
        caps.iter()
            .any(|c| c == "root" || c == cap || (cap == "update" && c == "create"))
    };
    let deny = || vault_error(StatusCode::FORBIDDEN, &[POLICY_DENIED]);
    match (method, segs.as_slice()) {
        ("GET", ["sys", "auth"]) => {
            if !allowed("sys/auth", "read") {
                return deny();
            }
            sys_auth(&shared)
        }
        ("POST" | "PUT", ["sys", "auth", mount @ ..]) if !mount.is_empty() => {
            if !token.is_root() {
                return deny();
            }
            let mount = mount.join("/");
            if str_field(&data, "type") != "kubernetes" {
                return vault_error(
                    StatusCode::BAD_REQUEST,
                    &[&format!(
                        "plugin not found in the catalog: {}",
                        str_field(&data, "type")
                    )],
                );
            }
            let mut vault = shared.vault();
            if vault.auth.contains_key(&mount) {
                return vault_error(
                    StatusCode::BAD_REQUEST,
                    &[&format!("path is already in use at {mount}/")],
                );
            }
            vault.auth.insert(mount, AuthMount::new());
            no_content()
        }
        ("POST" | "PUT", ["sys", "seal"]) => {
            if !token.is_root() {
                return deny();
            }
            shared.vault().sealed = true;
            no_content()
        }
        ("GET", ["sys", "monitor"]) => {
            if !allowed("sys/monitor", "read") {
                return deny();
            }
            let level = params
                .iter()
                .find(|(k, _)| k == "log_level")
                .map(|(_, v)| v.as_str())
                .unwrap_or("");
            match Level::parse(level) {
                Some(l) => shared.monitor.stream(l),
                None => vault_error(
                    StatusCode::BAD_REQUEST,
                    &[&format!("unknown log level: {level}")],
                ),
            }
        }
        (m, ["sys", "policies", "acl", name]) | (m, ["sys", "policy", name]) => {
            if !allowed(path, cap) {
                return deny();
            }
            match m {
                "GET" => match shared.vault().policies.get(*name) {
                    Some(p) => data_response(json!({"name": name, "policy": p})),
                    None => not_found_empty(),
                },
                "POST" | "PUT" => {
                    let p = str_field(&data, "policy");
                    if p.is_empty() {
                        return vault_error(
                            StatusCode::BAD_REQUEST,
                            &["'policy' parameter not supplied or empty"],
                        );
                    }
                    shared.vault().policies.insert(name.to_lowercase(), p);
                    no_content()
                }
                "DELETE" => {
                    shared.vault().policies.remove(*name);
                    no_content()
                }
                _ => vault_error(
                    StatusCode::METHOD_NOT_ALLOWED,
                    &[POLICY_DENIED
                        .replace("permission denied", "unsupported operation")
                        .as_str()],
                ),
            }
        }
        ("GET" | "POST", ["auth", "token", "lookup-self"]) => token_lookup(&token),
        ("POST" | "PUT", ["auth", "token", "revoke-self"]) => {
            if !token.is_root() {
                shared.vault().tokens.remove(&token.id);
            }
            no_content()
        }
        ("POST" | "PUT", ["auth", "token", "create"]) => {
            if !allowed("auth/token/create", "update") {
                return deny();
            }
            let mut policies = list_field(&data, "policies");
            if !bool_field(&data, "no_default_policy", false) {
                policies.push("default".into());
            }
            policies.sort();
            policies.dedup();
            let ttl = duration_field(&data, "ttl").unwrap_or(DEFAULT_TTL);
            let display = match str_field(&data, "display_name") {
                d if d.is_empty() => "token".to_string(),
                d => format!("token-{d}"),
            };
            let t = VaultToken::new(policies, &display, "auth/token/create", None, ttl);
            shared.vault().tokens.insert(t.id.clone(), t.clone());
            auth_response(&t, false)
        }
        (_, ["auth", mount, rest @ ..])
            if *mount != "token" && shared.vault().auth.contains_key(*mount) =>
        {
            auth_method(
                &shared, method, mount, rest, is_list, &data, path, &allowed, cap,
            )
        }
        (_, ["secret", "data", rest @ ..]) if !rest.is_empty() => {
            if !allowed(path, cap) {
                return deny();
            }
            let key = path.to_string();
            match method {
                "GET" => match shared.vault().kv.get(&key) {
                    Some(e) => data_response(
                        json!({"data": e.data, "metadata": {"created_time": e.created,
                        "custom_metadata": null, "deletion_time": "", "destroyed": false, "version": e.version}}),
                    ),
                    None => not_found_empty(),
                },
                "POST" | "PUT" => {
                    let Some(d) = data.get("data").filter(|d| d.is_object()).cloned() else {
                        return vault_error(StatusCode::BAD_REQUEST, &["no data provided"]);
                    };
                    let e = shared.vault().kv_put(&key, d);
                    data_response(json!({"created_time": e.created, "custom_metadata": null,
                        "deletion_time": "", "destroyed": false, "version": e.version}))
                }
                _ => vault_error(
                    StatusCode::METHOD_NOT_ALLOWED,
                    &["1 error occurred:\n\t* unsupported operation\n\n"],
                ),
            }
        }
        _ => no_handler(path),
    }
}

#[allow(clippy::too_many_arguments)]
fn auth_method(
    shared: &Shared,
    method: &str,
    mount: &str,
    rest: &[&str],
    is_list: bool,
    data: &Value,
    path: &str,
    allowed: &dyn Fn(&str, &str) -> bool,
    cap: &str,
) -> Response {
    let deny = || vault_error(StatusCode::FORBIDDEN, &[POLICY_DENIED]);
    let unsupported = || {
        vault_error(
            StatusCode::METHOD_NOT_ALLOWED,
            &["1 error occurred:\n\t* unsupported operation\n\n"],
        )
    };
    if !allowed(path, cap) {
        return deny();
    }
    match rest {
        ["config"] => match method {
            "GET" => match shared
                .vault()
                .auth
                .get(mount)
                .and_then(|m| m.config.clone())
            {
                Some(c) => data_response(c.read_json()),
                None => not_found_empty(),
            },
            "POST" | "PUT" => match StoredConfig::from_write(data) {
                Ok(cfg) => {
                    if let Some(m) = shared.vault().auth.get_mut(mount) {
                        m.config = Some(cfg);
                    }
                    no_content()
                }
                Err(msg) => vault_error(StatusCode::BAD_REQUEST, &[&msg]),
            },
            _ => unsupported(),
        },
        ["role"] | ["role", ""] if is_list => {
            let keys: Vec<String> = shared
                .vault()
                .auth
                .get(mount)
                .map(|m| m.roles.keys().cloned().collect())
                .unwrap_or_default();
            if keys.is_empty() {
                return not_found_empty();
            }
            data_response(json!({"keys": keys}))
        }
        ["role", name] => {
            let name = name.to_lowercase();
            match method {
                "GET" => match shared
                    .vault()
                    .auth
                    .get(mount)
                    .and_then(|m| m.roles.get(&name).cloned())
                {
                    Some(r) => data_response(r.read_json()),
                    None => not_found_empty(),
                },
                "POST" | "PUT" => match Role::from_write(data) {
                    Ok(r) => {
                        if let Some(m) = shared.vault().auth.get_mut(mount) {
                            m.roles.insert(name, r);
                        }
                        no_content()
                    }
                    Err(msg) => vault_error(StatusCode::BAD_REQUEST, &[&msg]),
                },
                "DELETE" => {
                    if let Some(m) = shared.vault().auth.get_mut(mount) {
                        m.roles.remove(&name);
                    }
                    no_content()
                }
                _ => unsupported(),
            }
        }
        _ => no_handler(path),
    }
}
