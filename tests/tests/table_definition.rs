//! template.yaml and the code agree on the table: keys, TTL attribute, billing.

use shared::store::dynamo::{PARTITION_KEY, SORT_KEY, TTL_ATTRIBUTE};

#[test]
fn template_table_matches_the_code() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../template.yaml")).unwrap();
    let doc: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
    let props = &doc["Resources"]["Table"]["Properties"];
    assert_eq!(doc["Resources"]["Table"]["Type"].as_str(), Some("AWS::DynamoDB::Table"));
    assert_eq!(props["BillingMode"].as_str(), Some("PAY_PER_REQUEST"));
    let keys: Vec<(String, String)> = props["KeySchema"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|k| (k["AttributeName"].as_str().unwrap().to_owned(), k["KeyType"].as_str().unwrap().to_owned()))
        .collect();
    assert_eq!(keys, [(PARTITION_KEY.to_owned(), "HASH".to_owned()), (SORT_KEY.to_owned(), "RANGE".to_owned())]);
    let attrs: Vec<(&str, &str)> = props["AttributeDefinitions"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|a| (a["AttributeName"].as_str().unwrap(), a["AttributeType"].as_str().unwrap()))
        .collect();
    assert_eq!(attrs, [(PARTITION_KEY, "S"), (SORT_KEY, "S")]);
    assert_eq!(props["TimeToLiveSpecification"]["AttributeName"].as_str(), Some(TTL_ATTRIBUTE));
    assert_eq!(props["TimeToLiveSpecification"]["Enabled"].as_bool(), Some(true));
    assert_eq!(props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"].as_bool(), Some(true));
}
