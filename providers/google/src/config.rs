//! Google Cloud settings: project, location, API endpoint, credentials, and the common
//! provider settings.
//!
//! Read from `[providers.NAME]` with `kind = "bigquery"`, `"dataproc-job"` or
//! `"dataproc-batch"`. The project falls back to the
//! variables Google's own tools read (`GOOGLE_CLOUD_PROJECT`, `CLOUDSDK_CORE_PROJECT`); the
//! credentials to Application Default Credentials (`GOOGLE_APPLICATION_CREDENTIALS`,
//! gcloud's `application_default_credentials.json`, the metadata server), see
//! [`crate::auth`].

use tether_provider::settings::Table;
use tether_provider::CommonSettings;
use tether_provider::Problems;

/// Where tether's Google credentials come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credentials {
    /// Application Default Credentials: `GOOGLE_APPLICATION_CREDENTIALS`, else gcloud's
    /// `application_default_credentials.json`, else the metadata server (GCE, GKE, Cloud Run;
    /// `GCE_METADATA_HOST` moves it).
    Default,
    /// A credentials file (`credentials_file`): a service account's key, gcloud's user
    /// credentials, an external account (workload identity federation) or an impersonated
    /// service account.
    File(String),
    /// The metadata server at this URL (`metadata_server`), for a workload on Google's
    /// compute whose metadata server is not at its usual address, and for tests.
    Metadata(String),
    /// None: requests carry no credentials (the Pub/Sub emulator's, `unauthenticated = true`
    /// in an event source's table; never a provider account's).
    None,
}

/// Checked Google Cloud settings (one account of one kind).
#[derive(Debug, Clone, PartialEq)]
pub struct GoogleConfig {
    /// The kind: `bigquery`, `dataproc-job` or `dataproc-batch`.
    pub kind: &'static str,
    /// The project jobs are made in unless the spec names another.
    pub project: String,
    /// The location jobs are made in unless the spec names another: BigQuery's (`US`, `EU`,
    /// `europe-west1`, ...; BigQuery reads and cancels a job outside the `US` and `EU`
    /// multi-regions only with its location, so tether always knows it), or Dataproc's
    /// region (`us-central1`, ...).
    pub location: String,
    /// The API's base URL (`https://bigquery.googleapis.com`,
    /// `https://dataproc.googleapis.com`, a regional endpoint), without a trailing slash.
    pub endpoint: String,
    /// Where the credentials come from.
    pub credentials: Credentials,
    /// Polling, rate limit, retries, timeouts.
    pub common: CommonSettings,
}

/// The default API endpoint of `kind`.
pub fn default_endpoint(kind: &str) -> &'static str {
    if kind.starts_with("dataproc") {
        "https://dataproc.googleapis.com"
    } else {
        "https://bigquery.googleapis.com"
    }
}

impl GoogleConfig {
    /// Builds the config of an account of `kind` (one of [`crate::factory::KINDS`]) from a
    /// provider table and the environment, reporting every bad or missing field (prefixed
    /// with `prefix`, e.g. `providers.bigquery`).
    pub fn build(
        kind: &'static str,
        prefix: &str,
        mut table: Table,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, Vec<String>> {
        let mut p = Problems::new(prefix);
        table.remove("kind");
        let common = CommonSettings::take_from(&mut table, &mut p, crate::edges::of(kind));
        let project = p
            .string(&mut table, "project")
            .or_else(|| env("GOOGLE_CLOUD_PROJECT"))
            .or_else(|| env("CLOUDSDK_CORE_PROJECT"))
            .filter(|v| !v.trim().is_empty());
        let location = p.string(&mut table, "location");
        let endpoint = p.string(&mut table, "endpoint");
        let file = p.string(&mut table, "credentials_file");
        let metadata = p.string(&mut table, "metadata_server");
        p.unknown("", &table);
        let project = match project {
            None => {
                p.at(
                    "project",
                    "missing (set it, or GOOGLE_CLOUD_PROJECT): the project jobs are made in",
                );
                None
            }
            Some(id) => p.checked("project", check_project(&id).map(|()| id)),
        };
        let location = match location {
            None if kind.starts_with("dataproc") => {
                p.at(
                    "location",
                    "missing: the region jobs run in unless the spec names one (us-central1, \
                     europe-west1, ...)",
                );
                None
            }
            None => {
                p.at(
                    "location",
                    "missing: the location jobs run in (US, EU, europe-west1, ...); BigQuery \
                     reads a job outside the US and EU multi-regions only with its location",
                );
                None
            }
            Some(l) => p.checked("location", check_location(&l).map(|()| l)),
        };
        let endpoint = match endpoint {
            None => Some(default_endpoint(kind).to_string()),
            Some(e) => p.checked("endpoint", check_url(&e)),
        };
        let credentials = match (file, metadata) {
            (Some(_), Some(_)) => {
                p.at(
                    "credentials_file",
                    "give credentials_file or metadata_server, not both",
                );
                None
            }
            (Some(f), None) if f.trim().is_empty() => {
                p.at("credentials_file", "is empty");
                None
            }
            (Some(f), None) => Some(Credentials::File(f)),
            (None, Some(m)) => {
                p.checked("metadata_server", check_url(&m).map(Credentials::Metadata))
            }
            (None, None) => Some(Credentials::Default),
        };
        match (project, location, endpoint, credentials) {
            (Some(project), Some(location), Some(endpoint), Some(credentials)) if p.is_empty() => {
                Ok(Self {
                    kind,
                    project,
                    location,
                    endpoint,
                    credentials,
                    common,
                })
            }
            _ => Err(p.into_lines()),
        }
    }

    /// A `kind` account of project `test-project`, location `US`, at `https://x`, for the adapters'
    /// tests.
    #[cfg(test)]
    pub(crate) fn for_tests(kind: &'static str) -> Self {
        let table = Table::from([
            ("project".to_string(), "test-project".into()),
            ("location".to_string(), "US".into()),
            ("endpoint".to_string(), "https://x".into()),
            ("metadata_server".to_string(), "http://127.0.0.1:9".into()),
        ]);
        Self::build(kind, "p", table, |_| None).expect("a valid test account")
    }
}

/// A project id: 6 to 30 lowercase letters, digits and hyphens, starting with a letter (a
/// domain-scoped project, `example.com:my-project`, has its domain and a colon before it).
pub fn check_project(id: &str) -> Result<(), String> {
    let bare = id.rsplit_once(':').map_or(id, |(_, p)| p);
    let ok = (6..=30).contains(&bare.len())
        && bare.starts_with(|c: char| c.is_ascii_lowercase())
        && !bare.ends_with('-')
        && bare
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{id:?} is not a project id (6 to 30 lowercase letters, digits and hyphens, \
             starting with a letter)"
        ))
    }
}

/// A location: letters, digits and hyphens (`US`, `EU`, `europe-west1`, `asia-northeast1`).
pub fn check_location(location: &str) -> Result<(), String> {
    if !location.is_empty()
        && location.len() <= 64
        && location
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-')
    {
        Ok(())
    } else {
        Err(format!(
            "{location:?} is not a location (US, EU, europe-west1, ...)"
        ))
    }
}

/// A base URL: `https://...`, or `http://...` for a simulator; without a trailing slash.
fn check_url(url: &str) -> Result<String, String> {
    if url.starts_with("https://") || url.starts_with("http://") {
        Ok(url.trim_end_matches('/').to_string())
    } else {
        Err(format!(
            "{url:?} must start with https:// (or http:// for a simulator)"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tether_provider::settings::Setting;

    fn build(pairs: &[(&str, &str)], env: &[(&str, &str)]) -> Result<GoogleConfig, Vec<String>> {
        let table: Table = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), Setting::from(*v)))
            .collect();
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        GoogleConfig::build("bigquery", "providers.bq", table, move |name| {
            env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
        })
    }

    #[test]
    fn a_minimal_account_takes_application_default_credentials() {
        let c = build(
            &[("location", "EU")],
            &[("GOOGLE_CLOUD_PROJECT", "my-project")],
        )
        .unwrap();
        assert_eq!(c.project, "my-project");
        assert_eq!(c.location, "EU");
        assert_eq!(c.endpoint, "https://bigquery.googleapis.com");
        assert_eq!(c.credentials, Credentials::Default);
    }

    #[test]
    fn every_bad_field_is_named() {
        let errors = build(
            &[
                ("project", "Bad_Project"),
                ("endpoint", "bigquery.googleapis.com"),
                ("credentials_file", "/k.json"),
                ("metadata_server", "http://127.0.0.1:1"),
                ("colour", "blue"),
            ],
            &[],
        )
        .unwrap_err();
        let all = errors.join("\n");
        for needle in [
            "providers.bq.project: \"Bad_Project\" is not a project id",
            "providers.bq.location: missing",
            "providers.bq.endpoint: \"bigquery.googleapis.com\" must start with https://",
            "providers.bq.credentials_file: give credentials_file or metadata_server, not both",
            "providers.bq.colour: unknown field",
        ] {
            assert!(all.contains(needle), "{needle} not in:\n{all}");
        }
        let errors = build(&[("location", "europe west")], &[]).unwrap_err();
        assert!(errors.join("\n").contains("project: missing"), "{errors:?}");
        assert!(
            errors.join("\n").contains("is not a location"),
            "{errors:?}"
        );
    }

    #[test]
    fn project_ids_follow_googles_rules() {
        assert!(check_project("my-project-123").is_ok());
        assert!(check_project("example.com:my-project").is_ok());
        assert!(check_project("short").is_err());
        assert!(check_project("1project").is_err());
        assert!(check_project("my-project-").is_err());
    }
}
