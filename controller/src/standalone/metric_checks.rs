//! Checks of the rollouts file's metrics at load: template arguments, built-in names and
//! their translation, placeholders, so a mistake is refused when the file is read instead of
//! failing every analysis run.

use super::config::TemplateConfig;

/// Built-in metric names (as the analysis bridge parses them) and duplicate template names.
pub(crate) fn check_templates(templates: &[TemplateConfig]) -> Result<(), String> {
    let mut problems = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for t in templates {
        if !seen.insert(t.name.as_str()) {
            problems.push(format!("template {:?} is defined twice", t.name));
        }
        for m in &t.metrics {
            let args: Vec<&str> = t.args.iter().map(|a| a.name.as_str()).collect();
            if let Err(e) = check_builtin(m).and_then(|_| check_placeholders(m, &args)) {
                problems.push(format!("template {:?}: metric {:?}: {e}", t.name, m.name));
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

/// A `builtin:` name must be one the analysis knows (`nginx-success-rate`, …) and usable as
/// written; the bridge's own parser and translation decide, so a typo or a `load-` comparison
/// is refused at load instead of failing the first analysis.
pub(crate) fn check_builtin(m: &sluice_crds::MetricSpec) -> Result<(), String> {
    let Some(name) = &m.builtin else {
        return Ok(());
    };
    crate::analysis_bridge::parse_builtin(name, sluice_analysis::Provider::NginxMtail)
        .map_err(|e| format!("{e}; known: {}", builtin_names().join(", ")))?;
    // A known name can still be unusable as written (no threshold, a `load-` comparison):
    // the bridge's own translation decides that too.
    crate::analysis_bridge::to_check(m, sluice_analysis::Provider::NginxMtail).map(|_| ())
}

/// A query template may use only the step variables, its own `args` and (in a template) the
/// template's arguments: an unknown `{{name}}` would fail every analysis run, so it is refused
/// at load, as the analysis crate's renderer would refuse it.
pub(crate) fn check_placeholders(
    m: &sluice_crds::MetricSpec,
    template_args: &[&str],
) -> Result<(), String> {
    let mut templates: Vec<(String, &str)> = Vec::new();
    if let Some(q) = &m.query {
        templates.push(("query".into(), q));
    }
    if let Some(w) = &m.web {
        templates.push(("web.url".into(), &w.url));
        if let Some(b) = &w.body {
            templates.push(("web.body".into(), b));
        }
        for (k, v) in &w.headers {
            templates.push((format!("web.headers.{k}"), v));
        }
    }
    for (what, t) in templates {
        check_template(m, &what, t, template_args)?;
    }
    Ok(())
}

pub(crate) fn check_template(
    m: &sluice_crds::MetricSpec,
    what: &str,
    q: &str,
    template_args: &[&str],
) -> Result<(), String> {
    let known = crate::analysis_bridge::StepVars::default().to_variables();
    let names = sluice_analysis::template::placeholders(q).map_err(|e| format!("{what}: {e}"))?;
    let unknown: Vec<String> = names
        .into_iter()
        .filter(|n| {
            !known.contains_key(n)
                && !m.args.contains_key(n)
                && !template_args.contains(&n.as_str())
        })
        .collect();
    if unknown.is_empty() {
        Ok(())
    } else {
        let mut vars: Vec<&str> = known.keys().map(String::as_str).collect();
        vars.extend(m.args.keys().map(String::as_str));
        vars.extend(template_args);
        Err(format!(
            "{what} uses unknown variable(s) {}; known: {}",
            unknown.join(", "),
            vars.join(", ")
        ))
    }
}

/// Every built-in name a standalone file may use: the analysis crate's own names and the
/// `nginx-` / `traefik-` families.
pub fn builtin_names() -> Vec<String> {
    let mut v: Vec<String> = sluice_analysis::BuiltinMetric::ALL
        .iter()
        .map(|m| m.name().to_string())
        .collect();
    for family in crate::analysis_bridge::FAMILIES {
        for (rest, _) in crate::analysis_bridge::FAMILY_METRICS {
            v.push(format!("{family}-{rest}"));
        }
    }
    v
}
