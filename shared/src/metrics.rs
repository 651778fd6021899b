//! Counters as CloudWatch Embedded Metric Format: one JSON line on stdout per event, which
//! CloudWatch turns into metrics without an API call. Written only inside Lambda (or with
//! `WXBRIDGE_EMF=1`), so local runs and tests keep a clean stdout.

use std::sync::OnceLock;

pub const NAMESPACE: &str = "wxbridge";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Counter {
    Login,
    NewPerson,
    Link,
    Merge,
    Conflict,
    WeChatError,
    PushHandled,
    /// A component app whose authorization of the platform is gone (its merchant must act).
    Reauthorization,
    /// WeChat refused the stored component_verify_ticket (61005/61006).
    ComponentTicket,
    /// An authorization event the bridge could not act on (unknown onboarding, bad code).
    ComponentEventDropped,
}

impl Counter {
    pub fn name(self) -> &'static str {
        match self {
            Counter::Login => "logins",
            Counter::NewPerson => "new_persons",
            Counter::Link => "links",
            Counter::Merge => "merges",
            Counter::Conflict => "conflicts",
            Counter::WeChatError => "wechat_errors",
            Counter::PushHandled => "pushes",
            Counter::Reauthorization => "reauthorizations_needed",
            Counter::ComponentTicket => "component_ticket_refused",
            Counter::ComponentEventDropped => "component_events_dropped",
        }
    }
}

fn function() -> Option<&'static str> {
    static F: OnceLock<Option<String>> = OnceLock::new();
    F.get_or_init(|| {
        let lambda = std::env::var("AWS_LAMBDA_FUNCTION_NAME").ok();
        let forced = std::env::var("WXBRIDGE_EMF").is_ok_and(|v| v == "1");
        lambda.or_else(|| forced.then(|| "local".to_owned()))
    })
    .as_deref()
}

/// The EMF document for one count.
pub fn emf_line(counter: Counter, function: &str, at_millis: i64) -> String {
    serde_json::json!({
        "_aws": {
            "Timestamp": at_millis,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [["function"]],
                "Metrics": [{"Name": counter.name(), "Unit": "Count"}],
            }],
        },
        "function": function,
        counter.name(): 1,
    })
    .to_string()
}

pub fn count(counter: Counter) {
    if let Some(f) = function() {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        println!("{}", emf_line(counter, f, now));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emf_documents_name_their_metric() {
        let v: serde_json::Value =
            serde_json::from_str(&emf_line(Counter::Merge, "mp-login", 1_700_000_000_000)).unwrap();
        assert_eq!(v["_aws"]["CloudWatchMetrics"][0]["Namespace"], NAMESPACE);
        assert_eq!(v["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Name"], "merges");
        assert_eq!(v["_aws"]["CloudWatchMetrics"][0]["Dimensions"][0][0], "function");
        assert_eq!(v["merges"], 1);
        assert_eq!(v["function"], "mp-login");
        assert_eq!(v["_aws"]["Timestamp"], 1_700_000_000_000i64);
    }
}
