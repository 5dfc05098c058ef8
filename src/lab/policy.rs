//! A small ACL policy model: parses the `path "..." { capabilities = [...] }` subset of HCL and
//! answers "may a token with these policies do X on path P" the way Vault matches paths.

/// One `path` stanza.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PathRule {
    pub path: String,
    pub capabilities: Vec<String>,
}

/// Parses the subset of HCL the lab needs. Unparsable stanzas are skipped.
pub(crate) fn parse(hcl: &str) -> Vec<PathRule> {
    let mut rules = Vec::new();
    let mut rest = hcl;
    while let Some(idx) = rest.find("path") {
        rest = &rest[idx + 4..];
        let Some(open_q) = rest.find('"') else { break };
        if !rest[..open_q].trim().is_empty() {
            continue;
        }
        let after = &rest[open_q + 1..];
        let Some(close_q) = after.find('"') else {
            break;
        };
        let path = after[..close_q].to_string();
        let after = &after[close_q + 1..];
        let (Some(ob), Some(cb)) = (after.find('{'), after.find('}')) else {
            break;
        };
        if cb < ob {
            rest = after;
            continue;
        }
        let block = &after[ob + 1..cb];
        let caps = block
            .find('[')
            .and_then(|s| block[s..].find(']').map(|e| &block[s + 1..s + e]))
            .map(|list| {
                list.split(',')
                    .map(|c| c.trim().trim_matches('"').to_string())
                    .filter(|c| !c.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        rules.push(PathRule {
            path,
            capabilities: caps,
        });
        rest = &after[cb + 1..];
    }
    rules
}

fn segment_glob_match(pattern: &str, path: &str) -> bool {
    let (pattern, prefix) = match pattern.strip_suffix('*') {
        Some(p) => (p, true),
        None => (pattern, false),
    };
    let ps: Vec<&str> = pattern.split('/').collect();
    let xs: Vec<&str> = path.split('/').collect();
    if prefix {
        if xs.len() < ps.len() {
            return false;
        }
        for (i, p) in ps.iter().enumerate() {
            let last = i + 1 == ps.len();
            let ok = if last {
                xs[i].starts_with(p)
            } else {
                *p == "+" || *p == xs[i]
            };
            if !ok {
                return false;
            }
        }
        true
    } else {
        ps.len() == xs.len() && ps.iter().zip(&xs).all(|(p, x)| *p == "+" || p == x)
    }
}

/// The capabilities granted on `path` by the rules of all `policies` (most specific match).
pub(crate) fn capabilities<'a>(
    rules: impl Iterator<Item = &'a PathRule>,
    path: &str,
) -> Vec<String> {
    let mut best: Option<(&PathRule, (bool, usize))> = None;
    for r in rules {
        if !segment_glob_match(&r.path, path) {
            continue;
        }
        let exact = !r.path.ends_with('*') && !r.path.contains('+');
        let score = (exact, r.path.len());
        if best.as_ref().is_none_or(|(_, s)| score > *s) {
            best = Some((r, score));
        }
    }
    match best {
        Some((r, _)) if !r.capabilities.iter().any(|c| c == "deny") => r.capabilities.clone(),
        _ => Vec::new(),
    }
}

/// The rules of Vault's built-in `default` policy that the lab needs.
pub(crate) fn default_policy() -> Vec<PathRule> {
    [
        "auth/token/lookup-self",
        "auth/token/renew-self",
        "auth/token/revoke-self",
    ]
    .iter()
    .map(|p| PathRule {
        path: p.to_string(),
        capabilities: vec!["read".into(), "update".into()],
    })
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_matches_like_vault() {
        let rules = parse(
            "path \"secret/data/a\" {\n  capabilities = [\"read\"]\n}\npath \"auth/kubernetes/role/*\" { capabilities = [\"read\", \"list\"] }\npath \"secret/+/b\" { capabilities = [\"create\"] }\npath \"secret/data/x*\" { capabilities = [\"deny\"] }",
        );
        assert_eq!(rules.len(), 4);
        assert_eq!(capabilities(rules.iter(), "secret/data/a"), vec!["read"]);
        assert!(capabilities(rules.iter(), "secret/data/ab").is_empty());
        assert_eq!(
            capabilities(rules.iter(), "auth/kubernetes/role/foo"),
            vec!["read", "list"]
        );
        assert_eq!(capabilities(rules.iter(), "secret/data/b"), vec!["create"]);
        assert!(capabilities(rules.iter(), "secret/data/xy").is_empty());
        assert!(capabilities(rules.iter(), "sys/monitor").is_empty());
    }
}
