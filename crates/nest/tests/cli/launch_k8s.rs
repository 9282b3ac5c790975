//! `nest launch k8s`: the manifests on disk, validated strictly against the real Kubernetes schemas with
//! `kubernetes-validate` (PyPI; found through `NEST_KUBERNETES_VALIDATE`, else on PATH; skipped with the reason
//! when absent, a failure under `NEST_REQUIRE_TOOLS=1`), then the meaning a schema cannot check: Indexed, the
//! counts, the segment argument, the Service the segments call, the token only in its own 0600 file.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::support::Sandbox;

/// The validator, or why there is none.
fn validator() -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os("NEST_KUBERNETES_VALIDATE") {
        let path = PathBuf::from(path);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(format!("NEST_KUBERNETES_VALIDATE={}: no such file", path.display()))
        };
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path).map(|d| d.join("kubernetes-validate")).find(|p| p.is_file()).ok_or_else(|| {
        "kubernetes-validate is not installed (pip install kubernetes-validate; or set NEST_KUBERNETES_VALIDATE)"
            .to_owned()
    })
}

/// A sandbox with two tasksets, a binary file among them, `nest.yaml` and its data file.
fn project() -> Sandbox {
    let sandbox = Sandbox::new();
    sandbox.write("a.rhai", "task(1, a);\n\nfn a() { client.get(\"/a\"); }\n");
    sandbox.write("sub/b.rhai", "task(1, b);\n\nfn b() { client.get(\"/b\"); }\n");
    std::fs::write(sandbox.dir().join("blob.bin"), [0xff, 0x00, 0xfe]).unwrap();
    sandbox.write_root("data/users.csv", "name\nann\n");
    sandbox.write_config("data:\n  users: data/users.csv\n");
    sandbox
}

/// Every document of a YAML stream, as JSON values.
fn documents(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap();
    serde_yaml_ng::Deserializer::from_str(&text).map(|doc| serde::Deserialize::deserialize(doc).unwrap()).collect()
}

fn find<'a>(docs: &'a [Value], kind: &str, name: &str) -> &'a Value {
    docs.iter()
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name} in {docs:#?}"))
}

fn strings(value: &Value) -> Vec<&str> {
    value.as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect()
}

#[test]
fn the_manifests_pass_the_strict_schemas_and_mean_one_indexed_run() {
    let validate = match validator() {
        Ok(path) => Some(path),
        Err(why) if std::env::var("NEST_REQUIRE_TOOLS").as_deref() == Ok("1") => panic!("{why}"),
        Err(why) => {
            eprintln!("not validating against the Kubernetes schemas: {why}");
            None
        }
    };
    let sandbox = project();
    let args = [
        "launch",
        "k8s",
        "--segments",
        "3",
        "--image",
        "registry.example/nest:1",
        "--namespace",
        "load",
        "-o",
        "out/k8s",
        "--threshold",
        "p95 < 1s",
        "--",
        "-H",
        "http://shop:8080",
        "-u",
        "6",
        "-t",
        "30s",
    ];
    let run = sandbox.nest(&args, &[]);
    run.assert_code(0);
    let (objects, secret) =
        (sandbox.root().join("out/k8s/nest-run.yaml"), sandbox.root().join("out/k8s/nest-token.yaml"));
    assert!(
        run.stdout.contains("kubectl -n load apply -f out/k8s/nest-token.yaml -f out/k8s/nest-run.yaml"),
        "{}",
        run.context()
    );
    assert_eq!(std::fs::metadata(&secret).unwrap().permissions().mode() & 0o777, 0o600);
    if let Some(validate) = validate {
        for version in ["1.33.0", "1.37.0"] {
            let out = Command::new(&validate)
                .args(["--strict", "--kubernetes-version", version])
                .arg(&objects)
                .arg(&secret)
                .output()
                .unwrap();
            let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
            assert!(out.status.success(), "kubernetes-validate {version}:\n{text}");
            assert_eq!(text.matches(" passed ").count(), 5, "five objects validated:\n{text}");
        }
    }
    let docs = documents(&objects);
    assert_eq!(docs.len(), 4);
    assert!(docs.iter().all(|d| d["metadata"]["namespace"] == "load"));

    let segments = &find(&docs, "Job", "nest-segments")["spec"];
    assert_eq!(segments["completionMode"], "Indexed");
    assert_eq!((segments["completions"].as_u64(), segments["parallelism"].as_u64()), (Some(3), Some(3)));
    assert_eq!(segments["backoffLimitPerIndex"], 0);
    let pod = &segments["template"]["spec"];
    assert_eq!(pod["restartPolicy"], "Never");
    let container = &pod["containers"][0];
    let args = strings(&container["args"]);
    assert_eq!(&args[..7], ["run", "-H", "http://shop:8080", "-u", "6", "-t", "30s"]);
    let at = |flag: &str| args[args.iter().position(|a| *a == flag).unwrap() + 1];
    assert_eq!(at("--segment"), "$(JOB_COMPLETION_INDEX)/3");
    // The index variable is declared, so Kubernetes expands it in the arguments.
    assert_eq!(container["env"][0]["name"], "JOB_COMPLETION_INDEX");

    let service = find(&docs, "Service", "nest-coordinator");
    let port = service["spec"]["ports"][0]["port"].as_u64().unwrap();
    assert_eq!(at("--coordinator"), format!("http://nest-coordinator:{port}"), "the segments call the Service");
    let coordinator = &find(&docs, "Job", "nest-coordinator")["spec"];
    assert_eq!((coordinator["completions"].as_u64(), coordinator["backoffLimit"].as_u64()), (Some(1), Some(0)));
    let template = &coordinator["template"];
    for (key, value) in service["spec"]["selector"].as_object().unwrap() {
        assert_eq!(&template["metadata"]["labels"][key], value, "the Service selects the coordinator's pod");
    }
    let container_port = &template["spec"]["containers"][0]["ports"][0];
    assert_eq!(container_port["name"], service["spec"]["ports"][0]["targetPort"]);
    assert_eq!(container_port["containerPort"].as_u64(), Some(port));
    let cargs = strings(&template["spec"]["containers"][0]["args"]);
    assert_eq!(&cargs[..5], ["coordinate", "--segments", "3", "--listen", &format!("0.0.0.0:{port}")]);
    assert!(cargs.windows(2).any(|w| w == ["--threshold", "p95 < 1s"]), "{cargs:?}");
    assert!(cargs.windows(2).any(|w| w == ["--json", "/reports/report.json"]), "{cargs:?}");

    // The token: only in the Secret's file, read by both pods through secretKeyRef.
    let secret = documents(&secret).remove(0);
    let token = secret["stringData"]["NEST_COORDINATOR_TOKEN"].as_str().unwrap().to_owned();
    assert_eq!(token.len(), 64);
    assert!(!std::fs::read_to_string(&objects).unwrap().contains(&token));
    for pod in [pod, &template["spec"]] {
        let env = pod["containers"][0]["env"].as_array().unwrap();
        let reference =
            &env.iter().find(|e| e["name"] == "NEST_COORDINATOR_TOKEN").unwrap()["valueFrom"]["secretKeyRef"];
        assert_eq!(reference["name"], secret["metadata"]["name"]);
        assert_eq!(reference["key"], "NEST_COORDINATOR_TOKEN");
    }

    // Every file is in the ConfigMap, mounted at its path, byte for byte.
    let files = find(&docs, "ConfigMap", "nest-files");
    let volume = &pod["volumes"][0]["configMap"];
    assert_eq!(volume["name"], "nest-files");
    let mut paths = Vec::new();
    for item in volume["items"].as_array().unwrap() {
        let (key, path) = (item["key"].as_str().unwrap(), item["path"].as_str().unwrap());
        let on_disk = std::fs::read(sandbox.root().join(path)).unwrap();
        let shipped = match files["data"][key].as_str() {
            Some(text) => text.as_bytes().to_vec(),
            None => decode(files["binaryData"][key].as_str().unwrap()),
        };
        assert_eq!(shipped, on_disk, "{path}");
        paths.push(path);
    }
    assert_eq!(paths, ["data/users.csv", "nest.yaml", "tasksets/a.rhai", "tasksets/blob.bin", "tasksets/sub/b.rhai"]);
}

/// Base64 (standard alphabet, padded), as Kubernetes writes `binaryData`.
fn decode(text: &str) -> Vec<u8> {
    let value = |c: u8| "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".bytes().position(|a| a == c);
    let bits: Vec<u8> = text.bytes().filter_map(value).map(|v| v as u8).collect();
    let mut out = Vec::new();
    for chunk in bits.chunks(4) {
        let n = chunk.iter().fold(0u32, |n, &v| (n << 6) | u32::from(v)) << (6 * (4 - chunk.len()));
        out.extend_from_slice(&n.to_be_bytes()[1..chunk.len()]);
    }
    out
}

#[test]
fn a_taskset_folder_outside_the_project_is_refused_before_anything_is_written() {
    let sandbox = project();
    let outside = tempfile::tempdir().unwrap();
    let dir = outside.path().display().to_string();
    let run = sandbox.nest(&["launch", "k8s", "--segments", "2", "--image", "i", "-o", "out/k8s", "-f", &dir], &[]);
    run.assert_code(2);
    assert!(run.stderr.contains("outside the project folder"), "{}", run.context());
    assert!(!sandbox.root().join("out/k8s").exists());
}
