//! ServiceAccount token issuer: really signed RS256 JWTs with the claims real clusters put in
//! them, and a registry that remembers every token issued and whether it is still valid.

use std::collections::HashMap;
use std::sync::Mutex;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

/// The API server's own audience and issuer in the lab cluster.
pub const API_AUDIENCE: &str = "https://kubernetes.default.svc.cluster.local";
/// `--service-account-issuer` of the lab cluster.
pub const ISSUER: &str = "https://kubernetes.default.svc.cluster.local";
/// Issuer of legacy Secret-based tokens.
pub const LEGACY_ISSUER: &str = "kubernetes/serviceaccount";

pub(crate) const SIGNING_KEY_PEM: &str = include_str!("keys/sa-signing-key.pem");
pub const SIGNING_PUB_PEM: &str = include_str!("keys/sa-signing-key.pub.pem");

/// What the lab knows about one token it issued.
#[derive(Clone, Debug)]
pub(crate) struct TokenRecord {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub audiences: Vec<String>,
    pub exp: Option<i64>,
    pub legacy: bool,
    pub invalidated: bool,
}

impl TokenRecord {
    pub fn username(&self) -> String {
        format!("system:serviceaccount:{}:{}", self.namespace, self.name)
    }
}

/// Why a presented token is not valid (texts as the API server's authenticators word them).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum TokenProblem {
    Unknown,
    Expired,
    Invalidated {
        legacy: bool,
    },
    Audience {
        token: Vec<String>,
        wanted: Vec<String>,
    },
}

impl TokenProblem {
    /// The aggregated authenticator error, as put in a TokenReview's `status.error`.
    pub fn review_error(&self) -> String {
        let inner = match self {
            TokenProblem::Unknown => "token lookup failed".to_string(),
            TokenProblem::Expired => "service account token has expired".to_string(),
            TokenProblem::Invalidated { legacy: true } => "Token has been invalidated".to_string(),
            TokenProblem::Invalidated { legacy: false } => {
                "service account token has been invalidated".to_string()
            }
            TokenProblem::Audience { token, wanted } => format!(
                "token audiences {} is invalid for the target audiences {}",
                go_string_list(token),
                go_string_list(wanted)
            ),
        };
        format!("[invalid bearer token, {inner}]")
    }
}

fn go_string_list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| format!("{s:?}")).collect();
    format!("[{}]", quoted.join(" "))
}

/// Issues and validates ServiceAccount tokens.
pub(crate) struct TokenIssuer {
    /// Signs with ring (the crypto provider already in the graph): a fleet of simulated
    /// clusters mints a token per triage each, and the pure-Rust RSA of `jsonwebtoken`'s
    /// `rust_crypto` backend took most of the lab's CPU doing it.
    key: Option<ring::signature::RsaKeyPair>,
    kid: String,
    registry: Mutex<HashMap<String, TokenRecord>>,
}

impl TokenIssuer {
    pub fn new() -> anyhow::Result<Self> {
        let key = ring::signature::RsaKeyPair::from_der(&pem_body(SIGNING_KEY_PEM)?)
            .map_err(|e| anyhow::anyhow!("the lab's signing key: {e}"))?;
        let kid = {
            use sha2::Digest as _;
            let digest = sha2::Sha256::digest(SIGNING_PUB_PEM.as_bytes());
            URL_SAFE_NO_PAD.encode(&digest[..24])
        };
        Ok(TokenIssuer {
            key: Some(key),
            kid,
            registry: Mutex::new(HashMap::new()),
        })
    }

    fn sign(&self, claims: &Value) -> anyhow::Result<String> {
        let key = self
            .key
            .as_ref()
            .ok_or_else(|| anyhow::anyhow!("no signing key"))?;
        // The header jsonwebtoken writes for RS256 with a key id.
        let header = json!({"typ": "JWT", "alg": "RS256", "kid": self.kid});
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header)?),
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims)?)
        );
        let mut signature = vec![0; key.public().modulus_len()];
        key.sign(
            &ring::signature::RSA_PKCS1_SHA256,
            &ring::rand::SystemRandom::new(),
            signing_input.as_bytes(),
            &mut signature,
        )
        .map_err(|e| anyhow::anyhow!("signing: {e}"))?;
        Ok(format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(signature)
        ))
    }

    /// Issues a bound (projected-style) token. `iat` is Unix seconds.
    pub fn issue(
        &self,
        namespace: &str,
        name: &str,
        uid: &str,
        audiences: Vec<String>,
        iat: i64,
        lifetime_secs: i64,
    ) -> anyhow::Result<String> {
        let exp = iat + lifetime_secs;
        let claims = json!({
            "aud": audiences,
            "exp": exp,
            "iat": iat,
            "iss": ISSUER,
            "jti": random_uuid(),
            "kubernetes.io": {
                "namespace": namespace,
                "serviceaccount": {"name": name, "uid": uid}
            },
            "nbf": iat,
            "sub": format!("system:serviceaccount:{namespace}:{name}"),
        });
        let token = self.sign(&claims)?;
        self.remember(
            &token,
            TokenRecord {
                namespace: namespace.into(),
                name: name.into(),
                uid: uid.into(),
                audiences,
                exp: Some(exp),
                legacy: false,
                invalidated: false,
            },
        );
        Ok(token)
    }

    /// Issues a legacy Secret-based token (no exp/iat/nbf/aud, flat claims).
    pub fn issue_legacy(
        &self,
        namespace: &str,
        name: &str,
        uid: &str,
        secret_name: &str,
    ) -> anyhow::Result<String> {
        let claims = json!({
            "iss": LEGACY_ISSUER,
            "kubernetes.io/serviceaccount/namespace": namespace,
            "kubernetes.io/serviceaccount/secret.name": secret_name,
            "kubernetes.io/serviceaccount/service-account.name": name,
            "kubernetes.io/serviceaccount/service-account.uid": uid,
            "sub": format!("system:serviceaccount:{namespace}:{name}"),
        });
        let token = self.sign(&claims)?;
        self.remember(
            &token,
            TokenRecord {
                namespace: namespace.into(),
                name: name.into(),
                uid: uid.into(),
                audiences: Vec::new(),
                exp: None,
                legacy: true,
                invalidated: false,
            },
        );
        Ok(token)
    }

    fn remember(&self, token: &str, record: TokenRecord) {
        if let Ok(mut reg) = self.registry.lock() {
            reg.insert(token.to_string(), record);
        }
    }

    /// Marks one token as invalidated (deleted Secret, deleted pod, ...).
    pub fn invalidate(&self, token: &str) {
        if let Ok(mut reg) = self.registry.lock()
            && let Some(rec) = reg.get_mut(token)
        {
            rec.invalidated = true;
        }
    }

    /// Validates a token for use with `wanted` audiences (empty = the API server's).
    /// `sa_invalidated` tells whether the token's ServiceAccount has all tokens invalidated.
    pub fn validate(
        &self,
        token: &str,
        wanted: &[String],
        now: i64,
        sa_invalidated: impl Fn(&str, &str) -> bool,
    ) -> Result<(TokenRecord, Vec<String>), TokenProblem> {
        let rec = self
            .registry
            .lock()
            .ok()
            .and_then(|reg| reg.get(token).cloned())
            .ok_or(TokenProblem::Unknown)?;
        if let Some(exp) = rec.exp
            && exp <= now
        {
            return Err(TokenProblem::Expired);
        }
        if rec.invalidated || sa_invalidated(&rec.namespace, &rec.name) {
            return Err(TokenProblem::Invalidated { legacy: rec.legacy });
        }
        let wanted: Vec<String> = if wanted.is_empty() {
            vec![API_AUDIENCE.to_string()]
        } else {
            wanted.to_vec()
        };
        if rec.legacy {
            return Ok((rec, wanted));
        }
        let matched: Vec<String> = wanted
            .iter()
            .filter(|a| rec.audiences.contains(a))
            .cloned()
            .collect();
        if matched.is_empty() {
            return Err(TokenProblem::Audience {
                token: rec.audiences.clone(),
                wanted,
            });
        }
        Ok((rec, matched))
    }
}

/// The DER inside a PEM block.
fn pem_body(pem: &str) -> anyhow::Result<Vec<u8>> {
    let body: String = pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .map(str::trim)
        .collect();
    Ok(base64::engine::general_purpose::STANDARD.decode(body)?)
}

/// Decodes a JWT's claims without verifying anything; `None` when it is not a 3-part JWT.
pub(crate) fn decode_claims(token: &str) -> Option<(Value, Value)> {
    let mut parts = token.split('.');
    let (h, c, _s) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(h).ok()?).ok()?;
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(c).ok()?).ok()?;
    Some((header, claims))
}

/// A random RFC 4122 v4-shaped UUID.
pub(crate) fn random_uuid() -> String {
    let b = random_bytes::<16>();
    let h = hex::encode(b);
    format!(
        "{}-{}-4{}-{}{}-{}",
        &h[0..8],
        &h[8..12],
        &h[13..16],
        ["8", "9", "a", "b"][(b[8] & 3) as usize],
        &h[17..20],
        &h[20..32]
    )
}

/// Random bytes from the OS-seeded hasher state plus a counter (good enough for test ids).
pub(crate) fn random_bytes<const N: usize>() -> [u8; N] {
    use std::collections::hash_map::RandomState;
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut out = [0u8; N];
    for chunk in out.chunks_mut(8) {
        let mut h = RandomState::new().build_hasher();
        h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
        let v = h.finish().to_le_bytes();
        chunk.copy_from_slice(&v[..chunk.len()]);
    }
    out
}

/// Random alphanumeric string of `n` characters.
pub(crate) fn random_alnum(n: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut s = String::with_capacity(n);
    while s.len() < n {
        for b in random_bytes::<32>() {
            if s.len() < n {
                s.push(ALPHABET[(b as usize) % ALPHABET.len()] as char);
            }
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{Algorithm, DecodingKey, Validation};

    #[test]
    fn bound_tokens_are_really_signed_and_carry_real_claims() {
        let issuer = TokenIssuer::new().expect("issuer");
        let now = chrono::Utc::now().timestamp();
        let tok = issuer
            .issue("prod", "app", "uid-1", vec![API_AUDIENCE.into()], now, 3600)
            .expect("token");
        let key = DecodingKey::from_rsa_pem(SIGNING_PUB_PEM.as_bytes()).expect("pub key");
        let mut v = Validation::new(Algorithm::RS256);
        v.set_audience(&[API_AUDIENCE]);
        let data = jsonwebtoken::decode::<Value>(&tok, &key, &v).expect("verifies");
        assert_eq!(data.claims["sub"], "system:serviceaccount:prod:app");
        // The header a Kubernetes API server writes: RS256 with the key id.
        assert_eq!(data.header.alg, Algorithm::RS256);
        assert!(data.header.kid.is_some());
        assert_eq!(
            data.claims["kubernetes.io"]["serviceaccount"]["uid"],
            "uid-1"
        );
        assert!(issuer.validate(&tok, &[], now, |_, _| false).is_ok());
        assert_eq!(
            issuer
                .validate(&tok, &[], now + 7200, |_, _| false)
                .unwrap_err(),
            TokenProblem::Expired
        );
        assert!(matches!(
            issuer.validate(&tok, &["vault".into()], now, |_, _| false),
            Err(TokenProblem::Audience { .. })
        ));
        issuer.invalidate(&tok);
        assert_eq!(
            issuer.validate(&tok, &[], now, |_, _| false).unwrap_err(),
            TokenProblem::Invalidated { legacy: false }
        );
        assert_eq!(
            issuer.validate("nope", &[], now, |_, _| false).unwrap_err(),
            TokenProblem::Unknown
        );
    }

    #[test]
    fn legacy_tokens_have_no_time_claims() {
        let issuer = TokenIssuer::new().expect("issuer");
        let tok = issuer
            .issue_legacy("vault", "vault-auth", "u", "vault-auth-token")
            .expect("token");
        let (header, claims) = decode_claims(&tok).expect("decodes");
        assert_eq!(header["alg"], "RS256");
        assert_eq!(claims["iss"], LEGACY_ISSUER);
        assert!(claims.get("exp").is_none());
        assert!(claims.get("aud").is_none());
        assert_eq!(
            claims["kubernetes.io/serviceaccount/service-account.name"],
            "vault-auth"
        );
    }

    #[test]
    fn random_ids_look_right() {
        let u = random_uuid();
        assert_eq!(u.len(), 36);
        assert_ne!(random_uuid(), u);
        assert_eq!(random_alnum(24).len(), 24);
    }
}
