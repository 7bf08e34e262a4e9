//! `deploy/`: every command line of the Kubernetes manifests and of the
//! Containerfile goes through the real `weft` argument parser (a manifest
//! cannot name a flag that does not exist), and the manifests keep the
//! promises the README makes: slots tied to CPU requests, worker memory
//! below the memory request, probes on /healthz and /readyz at the port
//! the server listens on, certificates from a Secret readable by the
//! owner only.

use std::path::Path;
use std::process::Command;

use yaml_rust2::{Yaml, YamlLoader};

fn deploy() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy")
}

/// Every document of every manifest.
fn manifests() -> Vec<(String, Yaml)> {
    let mut all = Vec::new();
    let mut files: Vec<_> = std::fs::read_dir(deploy().join("kubernetes"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(!files.is_empty());
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let docs =
            YamlLoader::load_from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        for doc in docs {
            all.push((file.display().to_string(), doc));
        }
    }
    all
}

/// Runs `weft ARGS` through its parser only.
fn check_args(args: &[String]) -> Result<String, String> {
    let out = Command::new(env!("CARGO_BIN_EXE_weft"))
        .args(args)
        .env("WEFT_CHECK_ARGS", "1")
        .env_remove("THREAD_MODE")
        .output()
        .unwrap();
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// A Kubernetes `$(VAR)` reference replaced by a value of the kind the
/// container's env gives it.
fn expand(arg: &str, env: &[(String, String)]) -> String {
    let mut out = arg.to_string();
    for (name, value) in env {
        out = out.replace(&format!("$({name})"), value);
    }
    assert!(
        !out.contains("$("),
        "`{arg}` names a variable the container does not set"
    );
    out
}

fn str_list(y: &Yaml) -> Vec<String> {
    y.as_vec()
        .map(|v| {
            v.iter()
                .map(|s| match s {
                    Yaml::String(s) => s.clone(),
                    Yaml::Integer(i) => i.to_string(),
                    other => panic!("not a string: {other:?}"),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The value after `flag` in `args`.
fn flag<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(String::as_str)
}

fn bytes(quantity: &str) -> u64 {
    let (digits, unit) = quantity.split_at(
        quantity
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(quantity.len()),
    );
    let n: u64 = digits.parse().unwrap();
    n << match unit {
        "Ki" | "K" => 10,
        "Mi" | "M" => 20,
        "Gi" | "G" => 30,
        "" => 0,
        other => panic!("unit {other}"),
    }
}

#[test]
fn every_container_command_line_parses_and_keeps_its_promises() {
    let mut checked = 0;
    let mut kinds = Vec::new();
    for (file, doc) in manifests() {
        let kind = doc["kind"]
            .as_str()
            .unwrap_or_else(|| panic!("{file}: no kind"))
            .to_string();
        kinds.push(kind.clone());
        if !matches!(kind.as_str(), "Deployment" | "StatefulSet") {
            continue;
        }
        let pod = &doc["spec"]["template"]["spec"];
        assert!(
            pod["securityContext"]["runAsNonRoot"]
                .as_bool()
                .unwrap_or(false),
            "{file}: {kind} runs as root"
        );
        for secret in pod["volumes"]
            .as_vec()
            .unwrap()
            .iter()
            .filter(|v| !v["secret"].is_badvalue())
        {
            assert_eq!(
                secret["secret"]["defaultMode"].as_i64(),
                Some(0o400),
                "{file}: a Secret readable by others"
            );
        }
        for container in pod["containers"].as_vec().unwrap() {
            let env: Vec<(String, String)> = container["env"]
                .as_vec()
                .map(|v| {
                    v.iter()
                        .map(|e| {
                            (
                                e["name"].as_str().unwrap().to_string(),
                                "example".to_string(),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            let mut args = str_list(&container["command"]);
            // The image's entrypoint is weft itself.
            if args
                .first()
                .is_some_and(|a| a.ends_with("/weft") || a == "weft")
            {
                args.remove(0);
            }
            args.extend(str_list(&container["args"]));
            let args: Vec<String> = args.iter().map(|a| expand(a, &env)).collect();
            let parsed = check_args(&args)
                .unwrap_or_else(|e| panic!("{file}: `weft {}`: {e}", args.join(" ")));
            assert!(parsed.starts_with("Cli"), "{parsed}");
            checked += 1;

            let requests = &container["resources"]["requests"];
            let cpu: u64 = requests["cpu"].as_str().unwrap().parse().unwrap();
            assert_eq!(
                flag(&args, "--slots"),
                Some(cpu.to_string().as_str()),
                "{file}: --slots is not the CPU request"
            );
            let memory = bytes(requests["memory"].as_str().unwrap());
            if let Some(kept) = flag(&args, "--worker-memory") {
                assert!(
                    bytes(kept) < memory,
                    "{file}: --worker-memory {kept} is not below the request"
                );
            }
            if let Some(cap) = flag(&args, "--max-memory") {
                assert!(
                    bytes(cap) < memory,
                    "{file}: --max-memory {cap} is not below the request"
                );
            }
            // Probes on the port the server serves them on.
            let served = flag(&args, "--http")
                .or_else(|| flag(&args, "--metrics"))
                .unwrap_or_else(|| panic!("{file}: no HTTP port"));
            let port: i64 = served.rsplit(':').next().unwrap().parse().unwrap();
            for (probe, path) in [("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")] {
                let get = &container[probe]["httpGet"];
                assert_eq!(get["path"].as_str(), Some(path), "{file}: {probe}");
                let named = get["port"].as_str().unwrap();
                let number = container["ports"]
                    .as_vec()
                    .unwrap()
                    .iter()
                    .find(|p| p["name"].as_str() == Some(named))
                    .and_then(|p| p["containerPort"].as_i64());
                assert_eq!(number, Some(port), "{file}: {probe} is not on {served}");
            }
            if kind == "Deployment" {
                let grace = pod["terminationGracePeriodSeconds"].as_i64().unwrap();
                let drain = flag(&args, "--drain-timeout").unwrap();
                let drain: i64 = drain.trim_end_matches('s').parse().unwrap();
                assert!(
                    drain < grace,
                    "{file}: --drain-timeout {drain}s is not below the grace period {grace}s"
                );
            }
        }
    }
    assert!(checked >= 2, "{checked} containers");
    for kind in ["Service", "StatefulSet", "Deployment"] {
        assert!(kinds.iter().any(|k| k == kind), "no {kind} in {kinds:?}");
    }
    let headless = manifests().into_iter().any(|(_, d)| {
        d["kind"].as_str() == Some("Service") && d["spec"]["clusterIP"].as_str() == Some("None")
    });
    assert!(headless, "no headless Service for the workers");
}

#[test]
fn the_containerfile_runs_weft_as_a_user_with_a_command_that_parses() {
    let text = std::fs::read_to_string(deploy().join("Containerfile")).unwrap();
    let froms: Vec<&str> = text.lines().filter(|l| l.starts_with("FROM ")).collect();
    assert!(froms.len() >= 2, "not multi-stage: {froms:?}");
    assert!(
        froms.last().unwrap().contains("debian:bookworm"),
        "{froms:?}"
    );
    let user = text
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("USER "))
        .unwrap();
    assert!(
        !user.starts_with('0') && !user.starts_with("root"),
        "USER {user}"
    );
    assert!(
        !text.contains("setup-toolchain"),
        "the guest toolchain is not in the image"
    );
    let json_list = |prefix: &str| -> Vec<String> {
        let line = text.lines().find_map(|l| l.strip_prefix(prefix)).unwrap();
        serde_json::from_str(line).unwrap_or_else(|e| panic!("{prefix}{line}: {e}"))
    };
    let entrypoint = json_list("ENTRYPOINT ");
    assert_eq!(entrypoint, ["/usr/local/bin/weft"]);
    let cmd = json_list("CMD ");
    check_args(&cmd).unwrap_or_else(|e| panic!("CMD {cmd:?}: {e}"));
}

#[test]
fn a_flag_that_does_not_exist_is_caught() {
    // The check above can fail.
    let err = check_args(&[
        "serve".into(),
        "--http".into(),
        "0.0.0.0:8080".into(),
        "--no-such-flag".into(),
    ])
    .unwrap_err();
    assert!(err.contains("--no-such-flag"), "{err}");
    assert!(
        check_args(&["serve".into(), "--listen".into(), "0.0.0.0:7300".into()]).is_err(),
        "a worker needs --cluster and --node"
    );
}
