//! Who ran the build, as SLSA's `runDetails` says it: the CI system's own identifiers where it
//! gives them (GitHub Actions, GitLab CI), otherwise nixpush's own builder id. Only what the CI
//! states is recorded (a start time only when the CI gives one), never the local clock.

use serde_json::{json, Map, Value};

/// nixpush's builder id outside a known CI.
pub const DEFAULT_BUILDER_ID: &str =
    "https://github.com/styrene-lab/nixpush/blob/main/docs/provenance.md#builder";

/// The `runDetails` of a statement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunDetails {
    pub builder_id: String,
    pub invocation_id: Option<String>,
    pub started_on: Option<String>,
}

impl RunDetails {
    /// From the process's environment.
    pub fn from_env() -> RunDetails {
        RunDetails::from_vars(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
    }

    /// From environment variables as `var` reads them.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> RunDetails {
        if var("GITHUB_ACTIONS").as_deref() == Some("true") {
            let server = var("GITHUB_SERVER_URL").unwrap_or_else(|| "https://github.com".into());
            let builder_id = match var("GITHUB_WORKFLOW_REF") {
                Some(workflow) => format!("{server}/{workflow}"),
                None => format!("{server}/actions"),
            };
            let invocation_id = match (var("GITHUB_REPOSITORY"), var("GITHUB_RUN_ID")) {
                (Some(repo), Some(run)) => Some(format!(
                    "{server}/{repo}/actions/runs/{run}/attempts/{}",
                    var("GITHUB_RUN_ATTEMPT").unwrap_or_else(|| "1".into())
                )),
                _ => None,
            };
            return RunDetails {
                builder_id,
                invocation_id,
                started_on: None,
            };
        }
        if var("GITLAB_CI").as_deref() == Some("true") {
            let server = var("CI_SERVER_URL").unwrap_or_else(|| "https://gitlab.com".into());
            let builder_id = match (var("CI_PROJECT_PATH"), var("CI_RUNNER_ID")) {
                (Some(project), Some(runner)) => format!("{server}/{project}/-/runners/{runner}"),
                _ => format!("{server}/-/runners"),
            };
            return RunDetails {
                builder_id,
                invocation_id: var("CI_JOB_URL"),
                started_on: var("CI_JOB_STARTED_AT"),
            };
        }
        RunDetails {
            builder_id: DEFAULT_BUILDER_ID.to_owned(),
            invocation_id: None,
            started_on: None,
        }
    }

    pub(super) fn to_json(&self) -> Value {
        let mut metadata = Map::new();
        if let Some(id) = &self.invocation_id {
            metadata.insert("invocationId".into(), json!(id));
        }
        if let Some(t) = &self.started_on {
            metadata.insert("startedOn".into(), json!(t));
        }
        let mut run = json!({"builder": {"id": self.builder_id}});
        if !metadata.is_empty() {
            run["metadata"] = Value::Object(metadata);
        }
        run
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn from(vars: &[(&str, &str)]) -> RunDetails {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        RunDetails::from_vars(|k| vars.get(k).cloned())
    }

    #[test]
    fn github_actions_names_the_workflow_and_the_run() {
        let run = from(&[
            ("GITHUB_ACTIONS", "true"),
            ("GITHUB_SERVER_URL", "https://github.com"),
            (
                "GITHUB_WORKFLOW_REF",
                "org/app/.github/workflows/release.yml@refs/heads/main",
            ),
            ("GITHUB_REPOSITORY", "org/app"),
            ("GITHUB_RUN_ID", "42"),
            ("GITHUB_RUN_ATTEMPT", "2"),
        ]);
        assert_eq!(
            run.builder_id,
            "https://github.com/org/app/.github/workflows/release.yml@refs/heads/main"
        );
        assert_eq!(
            run.invocation_id.as_deref(),
            Some("https://github.com/org/app/actions/runs/42/attempts/2")
        );
        assert_eq!(run.started_on, None);
    }

    #[test]
    fn gitlab_gives_its_start_time_and_elsewhere_no_time_at_all() {
        let run = from(&[
            ("GITLAB_CI", "true"),
            ("CI_SERVER_URL", "https://gitlab.example"),
            ("CI_PROJECT_PATH", "team/app"),
            ("CI_RUNNER_ID", "7"),
            ("CI_JOB_URL", "https://gitlab.example/team/app/-/jobs/9"),
            ("CI_JOB_STARTED_AT", "2026-01-02T03:04:05Z"),
        ]);
        assert_eq!(
            run.builder_id,
            "https://gitlab.example/team/app/-/runners/7"
        );
        assert_eq!(
            run.to_json()["metadata"]["startedOn"],
            "2026-01-02T03:04:05Z"
        );
        let local = from(&[]);
        assert_eq!(local.builder_id, DEFAULT_BUILDER_ID);
        assert!(local.to_json().get("metadata").is_none());
    }
}
