//! Routes are declared once, in each function's `routes()`: template.yaml's HttpApi events must
//! be exactly those, function by function, in both directions.

use std::collections::{BTreeMap, BTreeSet};

/// (binary, method, path) of every HttpApi event in template.yaml.
fn template_routes() -> BTreeMap<String, BTreeSet<(String, String)>> {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../template.yaml")).unwrap();
    let doc: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
    let mut out: BTreeMap<String, BTreeSet<(String, String)>> = BTreeMap::new();
    for (_, res) in doc["Resources"].as_mapping().unwrap() {
        if res["Type"].as_str() != Some("AWS::Serverless::Function") {
            continue;
        }
        let binary = res["Metadata"]["BuildProperties"]["Binary"].as_str().unwrap().to_owned();
        let routes = out.entry(binary).or_default();
        let Some(events) = res["Properties"]["Events"].as_mapping() else { continue };
        for (_, ev) in events {
            if ev["Type"].as_str() == Some("HttpApi") {
                let p = &ev["Properties"];
                routes.insert((p["Method"].as_str().unwrap().to_owned(), p["Path"].as_str().unwrap().to_owned()));
            }
        }
    }
    out
}

#[test]
fn template_declares_exactly_the_routes_each_function_serves() {
    let template = template_routes();
    let mut code: BTreeMap<String, BTreeSet<(String, String)>> = BTreeMap::new();
    for f in devstack::functions() {
        let routes = f.routes().iter().map(|r| (r.method.to_string(), r.path.to_owned())).collect();
        assert!(code.insert(f.function().to_owned(), routes).is_none(), "{} twice", f.function());
    }
    for (function, routes) in &code {
        let declared = template.get(function).unwrap_or_else(|| panic!("template.yaml has no function {function}"));
        let missing: Vec<_> = routes.difference(declared).collect();
        let extra: Vec<_> = declared.difference(routes).collect();
        assert!(missing.is_empty(), "{function} serves {missing:?}, which template.yaml does not route to it");
        assert!(extra.is_empty(), "template.yaml routes {extra:?} to {function}, which does not serve them");
    }
    // Functions without HTTP routes (the authorizer) are the only ones the code does not list.
    for (binary, declared) in &template {
        assert!(code.contains_key(binary) || declared.is_empty(), "{binary} has routes but no routes()");
    }
}
