//! The region of the selected profile in the shared AWS files (~/.aws/config and
//! ~/.aws/credentials); credentials from profiles are the default chain's.

use std::collections::HashMap;

/// The region of one named profile.
#[derive(Debug, Default)]
pub(super) struct Profile {
    pub region: Option<String>,
}

impl Profile {
    /// Reads `AWS_PROFILE` (default `default`) from `AWS_SHARED_CREDENTIALS_FILE` and
    /// `AWS_CONFIG_FILE`, which default to files under `~/.aws`. Missing files are no error.
    pub fn load(var: &impl Fn(&str) -> Option<String>) -> Self {
        let name = var("AWS_PROFILE").unwrap_or_else(|| "default".into());
        let home = var("HOME").unwrap_or_default();
        let read = |env: &str, default: &str| {
            let path = var(env).unwrap_or_else(|| format!("{home}/.aws/{default}"));
            std::fs::read_to_string(path).unwrap_or_default()
        };
        let creds = section(&read("AWS_SHARED_CREDENTIALS_FILE", "credentials"), &name);
        // In the config file every profile but `default` is written `[profile NAME]`.
        let config_name = if name == "default" { name.clone() } else { format!("profile {name}") };
        let config = section(&read("AWS_CONFIG_FILE", "config"), &config_name);
        Self { region: config.get("region").or_else(|| creds.get("region")).cloned() }
    }
}

/// The key = value pairs of `[name]` in an INI text.
fn section(text: &str, name: &str) -> HashMap<String, String> {
    let mut inside = false;
    let mut out = HashMap::new();
    for line in text.lines().map(str::trim) {
        if line.starts_with('#') || line.starts_with(';') || line.is_empty() {
            continue;
        }
        if let Some(header) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            inside = header.trim() == name;
        } else if inside && let Some((k, v)) = line.split_once('=') {
            out.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_profile_from_both_files() {
        let dir = std::env::temp_dir().join(format!("glaux-profile-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let creds = dir.join("credentials");
        let config = dir.join("config");
        std::fs::write(&creds, "[default]\naws_access_key_id=A\naws_secret_access_key=B\n[dev]\naws_access_key_id = DEVID\naws_secret_access_key = DEVSECRET\n").unwrap();
        std::fs::write(&config, "[profile dev]\nregion = eu-central-1\n").unwrap();
        let vars: HashMap<&str, String> = [
            ("AWS_PROFILE", "dev".to_string()),
            ("AWS_SHARED_CREDENTIALS_FILE", creds.display().to_string()),
            ("AWS_CONFIG_FILE", config.display().to_string()),
        ]
        .into_iter()
        .collect();
        let p = Profile::load(&|k: &str| vars.get(k).cloned());
        assert_eq!(p.region.as_deref(), Some("eu-central-1"));
        std::fs::remove_dir_all(dir).unwrap();
    }
}
