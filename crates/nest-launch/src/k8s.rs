//! `nest launch k8s`: the manifests of a coordinated run on Kubernetes, built from the typed API structs.
//!
//! Kubernetes places, starts and restarts the pods; nest only describes them: a ConfigMap with the project's
//! files, the coordinator (a Job of one pod, so it is never restarted halfway, and a Service the segments call),
//! and an Indexed Job of N segment pods, `--segment $(JOB_COMPLETION_INDEX)/N`. The token is a Secret of its own
//! file, read by every pod through `secretKeyRef`: it never appears in the arguments. Typed structs
//! (`k8s-openapi`) rather than templates keep the field names and types right; the values that a schema cannot
//! check (Indexed, the counts, the Service name) are the tests' job.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use k8s_openapi::ByteString;
use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::api::core::v1::{
    Capabilities, ConfigMap, ConfigMapVolumeSource, Container, ContainerPort, EmptyDirVolumeSource, EnvVar,
    EnvVarSource, KeyToPath, ObjectFieldSelector, PersistentVolumeClaimVolumeSource, PodSecurityContext, PodSpec,
    PodTemplateSpec, ResourceRequirements, SeccompProfile, Secret, SecretKeySelector, SecurityContext, Service,
    ServicePort, ServiceSpec, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use nest_coord::token::{TOKEN_ENV, Token};

use crate::bundle::Bundle;

/// Where the project's files are mounted in every pod (and the pods' working folder).
pub const PROJECT_DIR: &str = "/nest/project";
/// Where the coordinator writes its reports.
pub const REPORTS_DIR: &str = "/reports";
/// The user id of the image's user (the `Dockerfile`'s `USER`).
pub const USER_ID: i64 = 10001;
/// A ConfigMap holds at most 1 MiB; this leaves room for its keys and metadata.
const CONFIG_MAP_LIMIT: usize = 1_000_000;

/// What the manifests describe.
#[derive(Debug, Clone)]
pub struct Spec {
    /// The run's name: the prefix of every object's name, and a label.
    pub name: String,
    /// The namespace of every object, if any (else `kubectl`'s current one).
    pub namespace: Option<String>,
    /// The nest image.
    pub image: String,
    /// N: the segment pods.
    pub segments: u32,
    /// The coordinator's port.
    pub port: u16,
    /// `nest coordinate`'s flags besides `--segments` and `--listen` (thresholds, timeouts, reports under
    /// [`REPORTS_DIR`]).
    pub coordinate_args: Vec<String>,
    /// `nest run`'s flags for every segment, paths relative to the project folder.
    pub run_args: Vec<String>,
    /// A PersistentVolumeClaim for the reports; without it an `emptyDir`.
    pub reports_claim: Option<String>,
    /// Each segment pod's CPU (request and limit), as Kubernetes writes it (`2`, `500m`).
    pub cpu: Option<String>,
    /// Each segment pod's memory (request and limit): `1Gi`.
    pub memory: Option<String>,
}

/// Why the manifests cannot be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum K8sError {
    /// A file that cannot be read.
    #[error("{0}: {1}")]
    Io(PathBuf, std::io::Error),
    /// The files do not fit in one ConfigMap.
    #[error(
        "the project's files hold {0} bytes: more than a ConfigMap takes ({CONFIG_MAP_LIMIT}); bake them into the image instead"
    )]
    TooLarge(usize),
    /// A name Kubernetes refuses.
    #[error(
        "{0:?} is not a valid name: use lower-case letters, digits and '-', at most 40 characters, starting with a letter"
    )]
    BadName(String),
    /// A manifest that cannot be written as YAML.
    #[error("cannot write the manifests as YAML: {0}")]
    Yaml(#[from] serde_yaml_ng::Error),
}

/// The objects of one run.
#[derive(Debug, Clone)]
pub struct Manifests {
    /// The project's files.
    pub files: ConfigMap,
    /// The coordinator's Service.
    pub service: Service,
    /// The coordinator: a Job of one.
    pub coordinator: Job,
    /// The segments: an Indexed Job of N.
    pub segments: Job,
    /// The token.
    pub secret: Secret,
}

impl Spec {
    /// The name of the Service the segments call (and of the coordinator's Job).
    pub fn coordinator_name(&self) -> String {
        format!("{}-coordinator", self.name)
    }

    /// The coordinator's URL as the segments see it.
    pub fn coordinator_url(&self) -> String {
        format!("http://{}:{}", self.coordinator_name(), self.port)
    }

    /// Builds every object, reading the bundle's files.
    pub fn manifests(&self, bundle: &Bundle, token: &Token) -> Result<Manifests, K8sError> {
        let valid = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-';
        let first = self.name.chars().next();
        if !first.is_some_and(|c| c.is_ascii_lowercase()) || !self.name.chars().all(valid) || self.name.len() > 40 {
            return Err(K8sError::BadName(self.name.clone()));
        }
        let (files, items) = self.config_map(bundle)?;
        Ok(Manifests {
            files,
            service: self.service(),
            coordinator: self.coordinator_job(&items),
            segments: self.segments_job(&items),
            secret: self.secret(token),
        })
    }

    fn meta(&self, name: String, role: &str) -> ObjectMeta {
        ObjectMeta {
            name: Some(name),
            namespace: self.namespace.clone(),
            labels: Some(self.labels(role)),
            ..Default::default()
        }
    }

    fn labels(&self, role: &str) -> BTreeMap<String, String> {
        BTreeMap::from([
            ("app.kubernetes.io/name".to_owned(), "nest".to_owned()),
            ("app.kubernetes.io/instance".to_owned(), self.name.clone()),
            ("app.kubernetes.io/component".to_owned(), role.to_owned()),
        ])
    }

    /// The files as a ConfigMap (text as `data`, the rest as `binaryData`) and where each is mounted.
    fn config_map(&self, bundle: &Bundle) -> Result<(ConfigMap, Vec<KeyToPath>), K8sError> {
        let (mut data, mut binary, mut items, mut size) = (BTreeMap::new(), BTreeMap::new(), Vec::new(), 0);
        for (i, file) in bundle.files.iter().enumerate() {
            let bytes = std::fs::read(bundle.root.join(file)).map_err(|e| K8sError::Io(file.clone(), e))?;
            size += bytes.len();
            let key = config_key(i, file);
            match String::from_utf8(bytes) {
                Ok(text) => {
                    data.insert(key.clone(), text);
                }
                Err(e) => {
                    binary.insert(key.clone(), ByteString(e.into_bytes()));
                }
            }
            let path = file.to_string_lossy().into_owned();
            items.push(KeyToPath { key, path, mode: None });
        }
        if size > CONFIG_MAP_LIMIT {
            return Err(K8sError::TooLarge(size));
        }
        let map = ConfigMap {
            metadata: self.meta(format!("{}-files", self.name), "files"),
            data: Some(data),
            binary_data: (!binary.is_empty()).then_some(binary),
            immutable: Some(true),
        };
        Ok((map, items))
    }

    fn secret(&self, token: &Token) -> Secret {
        Secret {
            metadata: self.meta(format!("{}-token", self.name), "token"),
            string_data: Some(BTreeMap::from([(TOKEN_ENV.to_owned(), token.expose().to_owned())])),
            type_: Some("Opaque".to_owned()),
            ..Default::default()
        }
    }

    fn service(&self) -> Service {
        Service {
            metadata: self.meta(self.coordinator_name(), "coordinator"),
            spec: Some(ServiceSpec {
                selector: Some(self.labels("coordinator")),
                ports: Some(vec![ServicePort {
                    name: Some("coordinator".to_owned()),
                    port: i32::from(self.port),
                    target_port: Some(IntOrString::String("coordinator".to_owned())),
                    protocol: Some("TCP".to_owned()),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn coordinator_job(&self, items: &[KeyToPath]) -> Job {
        let mut args = vec!["coordinate".to_owned(), "--segments".to_owned(), self.segments.to_string()];
        args.extend(["--listen".to_owned(), format!("0.0.0.0:{}", self.port)]);
        args.extend(self.coordinate_args.iter().cloned());
        let mut container = self.container("coordinator", args);
        container.ports = Some(vec![ContainerPort {
            name: Some("coordinator".to_owned()),
            container_port: i32::from(self.port),
            protocol: Some("TCP".to_owned()),
            ..Default::default()
        }]);
        container.volume_mounts.get_or_insert_default().push(VolumeMount {
            name: "reports".to_owned(),
            mount_path: REPORTS_DIR.to_owned(),
            ..Default::default()
        });
        let reports = match &self.reports_claim {
            Some(claim) => Volume {
                name: "reports".to_owned(),
                persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                    claim_name: claim.clone(),
                    read_only: None,
                }),
                ..Default::default()
            },
            None => Volume {
                name: "reports".to_owned(),
                empty_dir: Some(EmptyDirVolumeSource::default()),
                ..Default::default()
            },
        };
        let spec = JobSpec {
            completions: Some(1),
            parallelism: Some(1),
            // A coordinator started again would have lost the run: fail once, and say so.
            backoff_limit: Some(0),
            template: self.template("coordinator", container, items, Some(reports)),
            ..Default::default()
        };
        Job { metadata: self.meta(self.coordinator_name(), "coordinator"), spec: Some(spec), ..Default::default() }
    }

    fn segments_job(&self, items: &[KeyToPath]) -> Job {
        let mut args = vec!["run".to_owned()];
        args.extend(self.run_args.iter().cloned());
        args.extend(["--segment".to_owned(), format!("$(JOB_COMPLETION_INDEX)/{}", self.segments)]);
        args.extend(["--coordinator".to_owned(), self.coordinator_url(), "--yes".to_owned(), "--quiet".to_owned()]);
        let mut container = self.container("segment", args);
        // Declared, so `$(JOB_COMPLETION_INDEX)` in the arguments is expanded from it.
        container.env.get_or_insert_default().insert(
            0,
            EnvVar {
                name: "JOB_COMPLETION_INDEX".to_owned(),
                value_from: Some(EnvVarSource {
                    field_ref: Some(ObjectFieldSelector {
                        field_path: "metadata.annotations['batch.kubernetes.io/job-completion-index']".to_owned(),
                        api_version: None,
                    }),
                    ..Default::default()
                }),
                value: None,
            },
        );
        let quantities = [("cpu", &self.cpu), ("memory", &self.memory)];
        let limits: BTreeMap<_, _> =
            quantities.iter().filter_map(|(k, v)| v.as_ref().map(|v| ((*k).to_owned(), Quantity(v.clone())))).collect();
        if !limits.is_empty() {
            container.resources = Some(ResourceRequirements {
                limits: Some(limits.clone()),
                requests: Some(limits),
                ..Default::default()
            });
        }
        let segments = i32::try_from(self.segments).unwrap_or(i32::MAX);
        let spec = JobSpec {
            completion_mode: Some("Indexed".to_owned()),
            completions: Some(segments),
            parallelism: Some(segments),
            // A segment started again would be a second copy of its share: the coordinator marks it lost instead.
            backoff_limit_per_index: Some(0),
            template: self.template("segment", container, items, None),
            ..Default::default()
        };
        Job {
            metadata: self.meta(format!("{}-segments", self.name), "segment"),
            spec: Some(spec),
            ..Default::default()
        }
    }

    /// The nest container: the token from the Secret, the project's files mounted read-only, no privileges.
    fn container(&self, name: &str, args: Vec<String>) -> Container {
        let token = EnvVar {
            name: TOKEN_ENV.to_owned(),
            value_from: Some(EnvVarSource {
                secret_key_ref: Some(SecretKeySelector {
                    name: format!("{}-token", self.name),
                    key: TOKEN_ENV.to_owned(),
                    optional: Some(false),
                }),
                ..Default::default()
            }),
            value: None,
        };
        Container {
            name: name.to_owned(),
            image: Some(self.image.clone()),
            args: Some(args),
            env: Some(vec![token]),
            working_dir: Some(PROJECT_DIR.to_owned()),
            volume_mounts: Some(vec![VolumeMount {
                name: "project".to_owned(),
                mount_path: PROJECT_DIR.to_owned(),
                read_only: Some(true),
                ..Default::default()
            }]),
            security_context: Some(SecurityContext {
                allow_privilege_escalation: Some(false),
                read_only_root_filesystem: Some(true),
                capabilities: Some(Capabilities { drop: Some(vec!["ALL".to_owned()]), add: None }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    /// A pod that runs once (`restartPolicy: Never`), non-root, with the project's files and `extra`, if named.
    fn template(
        &self,
        role: &str,
        container: Container,
        items: &[KeyToPath],
        extra: Option<Volume>,
    ) -> PodTemplateSpec {
        let project = Volume {
            name: "project".to_owned(),
            config_map: Some(ConfigMapVolumeSource {
                name: format!("{}-files", self.name),
                items: Some(items.to_vec()),
                default_mode: Some(0o444),
                optional: Some(false),
            }),
            ..Default::default()
        };
        let volumes = std::iter::once(project).chain(extra).collect();
        PodTemplateSpec {
            metadata: Some(ObjectMeta { labels: Some(self.labels(role)), ..Default::default() }),
            spec: Some(PodSpec {
                containers: vec![container],
                restart_policy: Some("Never".to_owned()),
                automount_service_account_token: Some(false),
                enable_service_links: Some(false),
                security_context: Some(PodSecurityContext {
                    run_as_non_root: Some(true),
                    run_as_user: Some(USER_ID),
                    run_as_group: Some(USER_ID),
                    fs_group: Some(USER_ID),
                    seccomp_profile: Some(SeccompProfile {
                        type_: "RuntimeDefault".to_owned(),
                        localhost_profile: None,
                    }),
                    ..Default::default()
                }),
                volumes: Some(volumes),
                ..Default::default()
            }),
        }
    }
}

/// A ConfigMap key for file `i`: only `[-._a-zA-Z0-9]`, unique by its index, readable by its path.
fn config_key(i: usize, file: &Path) -> String {
    let path = file.to_string_lossy();
    let clean: String =
        path.chars().map(|c| if c.is_ascii_alphanumeric() || "-._".contains(c) { c } else { '_' }).collect();
    let mut key = format!("{i}-{clean}");
    key.truncate(253);
    key
}

impl Manifests {
    /// Everything but the Secret, as one YAML stream (`---` between the objects), in the order to apply them.
    pub fn objects_yaml(&self) -> Result<String, K8sError> {
        let docs = [
            serde_yaml_ng::to_string(&self.files)?,
            serde_yaml_ng::to_string(&self.service)?,
            serde_yaml_ng::to_string(&self.coordinator)?,
            serde_yaml_ng::to_string(&self.segments)?,
        ];
        Ok(docs.join("---\n"))
    }

    /// The Secret alone (its own file, readable by its owner only).
    pub fn secret_yaml(&self) -> Result<String, K8sError> {
        Ok(serde_yaml_ng::to_string(&self.secret)?)
    }

    /// Writes `DIR/NAME-run.yaml` and `DIR/NAME-token.yaml` (mode 0600, created so from the start); their paths.
    pub fn write(&self, dir: &Path, name: &str) -> Result<[PathBuf; 2], K8sError> {
        std::fs::create_dir_all(dir).map_err(|e| K8sError::Io(dir.to_path_buf(), e))?;
        let objects = dir.join(format!("{name}-run.yaml"));
        let secret = dir.join(format!("{name}-token.yaml"));
        std::fs::write(&objects, self.objects_yaml()?).map_err(|e| K8sError::Io(objects.clone(), e))?;
        write_private(&secret, self.secret_yaml()?.as_bytes()).map_err(|e| K8sError::Io(secret.clone(), e))?;
        Ok([objects, secret])
    }
}

/// Writes a file readable by its owner only: an existing one is replaced, never opened with wider rights.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_valid_and_unique() {
        assert_eq!(config_key(3, Path::new("tasksets/a b/x.rhai")), "3-tasksets_a_b_x.rhai");
    }

    #[test]
    fn a_bad_name_is_refused() {
        let spec = Spec {
            name: "Nest_1".into(),
            namespace: None,
            image: "i".into(),
            segments: 2,
            port: 7878,
            coordinate_args: vec![],
            run_args: vec![],
            reports_claim: None,
            cpu: None,
            memory: None,
        };
        let bundle = Bundle { root: ".".into(), files: vec![], run_args: vec![] };
        let err = spec.manifests(&bundle, &Token::generate()).unwrap_err().to_string();
        assert!(err.contains("\"Nest_1\" is not a valid name"), "{err}");
    }
}
