//! The plan hash: one SHA-256 over what decides a run's load, so that history entries of the same plan are
//! compared and others are not.
//!
//! It covers the scripts (relative paths and bytes, in path order), the mix (weights) and the load settings the
//! caller passes as JSON (steps, step time, settle, SLOs, tags, model); never the target host, the machine or a
//! secret. (A plan hash of the run report, `RunInfo`, is being added elsewhere; the two are to be unified.)

use sha2::{Digest, Sha256};

/// `sha256:` and the hex digest of the scripts (`(relative path, bytes)`) and the settings.
pub fn plan_hash(scripts: &[(String, Vec<u8>)], settings: &serde_json::Value) -> String {
    let mut sorted: Vec<&(String, Vec<u8>)> = scripts.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let mut hasher = Sha256::new();
    for (path, bytes) in sorted {
        // Lengths first, so that no two inputs run together into the same bytes.
        hasher.update((path.len() as u64).to_le_bytes());
        hasher.update(path.as_bytes());
        hasher.update((bytes.len() as u64).to_le_bytes());
        hasher.update(bytes);
    }
    // serde_json's maps are sorted by key: the same settings always serialise the same.
    hasher.update(settings.to_string().as_bytes());
    let digest = hasher.finalize();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_hash_follows_scripts_and_settings_but_not_their_order() {
        let a = ("a.rhai".to_owned(), b"task(1, || {})".to_vec());
        let b = ("b.rhai".to_owned(), b"weight(2)".to_vec());
        let settings = json!({ "steps": [1, 2], "settle_s": 5 });
        let h = plan_hash(&[a.clone(), b.clone()], &settings);
        assert!(h.starts_with("sha256:") && h.len() == 7 + 64, "{h}");
        assert_eq!(h, plan_hash(&[b.clone(), a.clone()], &settings));
        assert_ne!(h, plan_hash(std::slice::from_ref(&a), &settings));
        assert_ne!(h, plan_hash(&[a.clone(), b.clone()], &json!({ "steps": [1, 3], "settle_s": 5 })));
        let moved = ("c.rhai".to_owned(), b.1.clone());
        assert_ne!(h, plan_hash(&[a, moved], &settings));
    }
}
