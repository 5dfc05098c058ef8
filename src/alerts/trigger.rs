//! When an incident triggers a triage: by default when an alert's name or annotations mention
//! Vault or `permission denied`; configurable keywords and label matchers.

use super::incident::Incident;
pub use crate::config::TriggerRules;

impl TriggerRules {
    /// Does the incident call for a triage?
    pub fn matches(&self, incident: &Incident) -> bool {
        if !self.enabled {
            return false;
        }
        let text = incident.searchable_text().to_lowercase();
        let by_keyword = self
            .keywords
            .iter()
            .any(|k| !k.is_empty() && text.contains(&k.to_lowercase()));
        let by_labels = !self.labels.is_empty()
            && incident.alerts.values().any(|s| {
                self.labels
                    .iter()
                    .all(|(k, v)| s.alert.labels.get(k) == Some(v))
            });
        by_keyword || by_labels
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::payload::{Source, parse};

    fn incident(name: &str) -> Incident {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/alertmanager/");
        let g = parse(
            Source::Alertmanager,
            &std::fs::read(format!("{dir}{name}")).unwrap(),
        )
        .unwrap();
        let mut i = Incident::open(&g, chrono::Utc::now());
        i.apply(&g, chrono::Utc::now());
        i
    }

    #[test]
    fn vault_permission_denied_triggers_by_default() {
        assert!(TriggerRules::default().matches(&incident("firing.raw.json")));
    }

    #[test]
    fn unrelated_alerts_do_not_trigger_unless_configured() {
        let storm = incident("capped-max_alerts5-burst-group.json");
        assert!(!TriggerRules::default().matches(&storm));
        let mut rules = TriggerRules::default();
        rules.labels.insert("namespace".into(), "ns0".into());
        assert!(rules.matches(&storm));
        rules.enabled = false;
        assert!(!rules.matches(&incident("firing.raw.json")));
    }
}
