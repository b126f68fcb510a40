//! The API/CLI examples stay true: the Alertmanager config posts to the webhook route with a
//! bearer token, and the Argo CD health check maps phases as documented (run with `lua5.4`
//! when it is installed), its ConfigMap copy equal to `health.lua`.

use std::path::PathBuf;
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(root().join(rel)).unwrap()
}

#[test]
fn alertmanager_example_targets_the_webhook_with_a_token() {
    let cfg: serde_json::Value =
        serde_saphyr::from_str(&read("examples/alertmanager/alertmanager.yml")).unwrap();
    let receivers = cfg["receivers"].as_array().unwrap();
    let sluice = receivers.iter().find(|r| r["name"] == "sluice").unwrap();
    let hook = &sluice["webhook_configs"][0];
    assert!(hook["url"]
        .as_str()
        .unwrap()
        .ends_with("/webhooks/alertmanager"));
    assert_eq!(hook["http_config"]["authorization"]["type"], "Bearer");
    let route = &cfg["route"]["routes"][0];
    assert_eq!(route["receiver"], "sluice");
    assert_eq!(route["group_wait"], "0s");
    let rules: serde_json::Value =
        serde_saphyr::from_str(&read("examples/alertmanager/rules.yml")).unwrap();
    let labels = &rules["groups"][0]["rules"][0]["labels"];
    assert!(labels["rollout"].is_string());
}

fn lua_body(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("--"))
        .map(str::to_string)
        .collect()
}

#[test]
fn argocd_health_check() {
    let lua = read("examples/argocd/health.lua");
    let cm: serde_json::Value =
        serde_saphyr::from_str(&read("examples/argocd/argocd-cm-patch.yaml")).unwrap();
    let embedded = cm["data"]["resource.customizations.health.sluice.dev_Rollout"]
        .as_str()
        .unwrap();
    assert_eq!(lua_body(embedded), lua_body(&lua), "ConfigMap copy drifted");

    if Command::new("lua5.4").arg("-v").output().is_err() {
        eprintln!("lua5.4 not installed: skipping the Lua evaluation");
        return;
    }
    let harness = format!(
        r#"local src = [==[{lua}]==]
local function check(o)
  local hs = assert(load(src, "health", "t", {{obj = o, tostring = tostring}}))()
  io.write(hs.status, "|", hs.message or "", "\n")
end
check({{}})
check({{status = {{phase = "Progressing", canaryWeight = 20, message = "analysing"}}}})
check({{status = {{phase = "Paused"}}}})
check({{status = {{phase = "Failed", abort = {{reason = "error rate"}}}}}})
check({{status = {{phase = "Succeeded"}}}})
check({{status = {{phase = "Idle"}}}})
check({{status = {{phase = "RollingBack"}}}})
"#
    );
    let out = Command::new("lua5.4")
        .arg("-e")
        .arg(harness)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    let got: Vec<&str> = text.lines().collect();
    assert_eq!(
        got,
        [
            "Progressing|waiting for the controller",
            "Progressing|Progressing at 20% canary traffic. analysing",
            "Suspended|",
            "Degraded|rolled back: error rate",
            "Healthy|",
            "Healthy|",
            "Degraded|",
        ]
    );
}
