//! The committed CRD YAML under crds/yaml/ must match the types (UPDATE_EXPECT=1 rewrites it).

use expect_test::expect_file;

#[test]
fn rollout_crd_yaml_is_in_sync() {
    let yaml = sluice_crds::crd::rollout_crd_yaml().expect("render");
    expect_file!["../yaml/rollout.yaml"].assert_eq(&yaml);
}

#[test]
fn analysis_template_crd_yaml_is_in_sync() {
    let yaml = sluice_crds::crd::analysis_template_crd_yaml().expect("render");
    expect_file!["../yaml/analysistemplate.yaml"].assert_eq(&yaml);
}

#[test]
fn crd_yaml_parses_back_with_expected_identity() {
    let yaml = sluice_crds::crd::rollout_crd_yaml().expect("render");
    let v: serde_json::Value = serde_saphyr::from_str(&yaml).expect("parse");
    assert_eq!(v["spec"]["group"], "sluice.dev");
    assert_eq!(v["spec"]["names"]["kind"], "Rollout");
    assert_eq!(v["spec"]["scope"], "Namespaced");
    let version = &v["spec"]["versions"][0];
    assert_eq!(version["name"], "v1alpha1");
    assert!(version["subresources"]["status"].is_object());
    let cols: Vec<&str> = version["additionalPrinterColumns"]
        .as_array()
        .expect("columns")
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(cols, ["Phase", "Weight", "Step", "Age"]);
}
