//! The DynamoDB adapter: one table, PK/SK strings, TTL on `ttl` (ARCHITECTURE.md §3).
//! Errors are matched on their code or variant, never on message text.

use async_trait::async_trait;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, ConditionCheck, Delete, KeySchemaElement, KeyType, Put,
    ScalarAttributeType, TimeToLiveSpecification, TransactWriteItem, Update,
};
use aws_sdk_dynamodb::Client;
use std::collections::HashMap;

use super::{validate_transaction, Attr, Check, Item, Key, Store, StoreError, Write};

/// The table's definition; template.yaml declares the same (a test compares them).
pub const PARTITION_KEY: &str = "PK";
pub const SORT_KEY: &str = "SK";
pub const TTL_ATTRIBUTE: &str = "ttl";

#[derive(Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
}

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoStore { client, table: table.into() }
    }

    /// A client that gives up in time: an unreachable or stalled DynamoDB answers
    /// `store_unavailable` within a few seconds (the SDK retries inside that), never holds a
    /// request until the Lambda times out.
    pub fn client(config: &aws_config::SdkConfig) -> Client {
        let timeouts = aws_config::timeout::TimeoutConfig::builder()
            .connect_timeout(std::time::Duration::from_millis(800))
            .operation_attempt_timeout(std::time::Duration::from_millis(1500))
            .operation_timeout(std::time::Duration::from_secs(4))
            .build();
        let conf = aws_sdk_dynamodb::config::Builder::from(config).timeout_config(timeouts).build();
        Client::from_conf(conf)
    }

    /// A client for a local DynamoDB server (devstack, tests): explicit endpoint, and dummy
    /// credentials and region when the environment has none.
    pub async fn local(endpoint: &str, table: impl Into<String>) -> Self {
        let mut loader = aws_config::from_env().endpoint_url(endpoint);
        if std::env::var("AWS_ACCESS_KEY_ID").is_err() {
            loader = loader.credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
                "local",
                "local",
                None,
                None,
                "wxbridge-local",
            ));
        }
        if std::env::var("AWS_REGION").is_err() && std::env::var("AWS_DEFAULT_REGION").is_err() {
            loader = loader.region(aws_config::Region::new("us-east-1"));
        }
        let config = loader.load().await;
        Self::new(Self::client(&config), table)
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// Creates the table (and its TTL) when it does not exist yet: devstack and tests.
    pub async fn ensure_table(&self) -> Result<(), StoreError> {
        match self.client.describe_table().table_name(&self.table).send().await {
            Ok(_) => return Ok(()),
            Err(e) if e.code() == Some("ResourceNotFoundException") => {}
            Err(e) => return Err(map_other(e)),
        }
        let attr = |n: &str| {
            AttributeDefinition::builder()
                .attribute_name(n)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .map_err(|e| StoreError::Invalid(e.to_string()))
        };
        let key = |n: &str, t: KeyType| {
            KeySchemaElement::builder()
                .attribute_name(n)
                .key_type(t)
                .build()
                .map_err(|e| StoreError::Invalid(e.to_string()))
        };
        let created = self
            .client
            .create_table()
            .table_name(&self.table)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(attr(PARTITION_KEY)?)
            .attribute_definitions(attr(SORT_KEY)?)
            .key_schema(key(PARTITION_KEY, KeyType::Hash)?)
            .key_schema(key(SORT_KEY, KeyType::Range)?)
            .send()
            .await;
        match created {
            Ok(_) => {}
            // Another process created it first.
            Err(e) if e.code() == Some("ResourceInUseException") => return Ok(()),
            Err(e) => return Err(map_other(e)),
        }
        let ttl = TimeToLiveSpecification::builder()
            .attribute_name(TTL_ATTRIBUTE)
            .enabled(true)
            .build()
            .map_err(|e| StoreError::Invalid(e.to_string()))?;
        self.client
            .update_time_to_live()
            .table_name(&self.table)
            .time_to_live_specification(ttl)
            .send()
            .await
            .map_err(map_other)?;
        Ok(())
    }
}

fn to_av(a: &Attr) -> AttributeValue {
    match a {
        Attr::S(s) => AttributeValue::S(s.clone()),
        Attr::N(n) => AttributeValue::N(n.to_string()),
    }
}

fn from_item(m: HashMap<String, AttributeValue>) -> Item {
    m.into_iter()
        .filter_map(|(k, v)| {
            let a = match v {
                AttributeValue::S(s) => Attr::S(s),
                AttributeValue::N(n) => Attr::N(n.parse().ok()?),
                // Attributes of other types are not ours; ignore them rather than fail.
                _ => return None,
            };
            Some((k, a))
        })
        .collect()
}

fn key_map(key: &Key) -> HashMap<String, AttributeValue> {
    HashMap::from([
        (PARTITION_KEY.to_owned(), AttributeValue::S(key.pk.clone())),
        (SORT_KEY.to_owned(), AttributeValue::S(key.sk.clone())),
    ])
}

/// A condition or update expression with its placeholders.
#[derive(Default)]
struct Expr {
    names: HashMap<String, String>,
    values: HashMap<String, AttributeValue>,
}

impl Expr {
    fn name(&mut self, n: &str) -> String {
        let p = format!("#n{}", self.names.len());
        self.names.insert(p.clone(), n.to_owned());
        p
    }
    fn value(&mut self, v: &Attr) -> String {
        let p = format!(":v{}", self.values.len());
        self.values.insert(p.clone(), to_av(v));
        p
    }
    fn condition(&mut self, cond: &[Check]) -> Option<String> {
        if cond.is_empty() {
            return None;
        }
        let parts: Vec<String> = cond
            .iter()
            .map(|c| match c {
                Check::Exists => format!("attribute_exists({})", self.name(PARTITION_KEY)),
                Check::NotExists => format!("attribute_not_exists({})", self.name(PARTITION_KEY)),
                Check::Eq(n, v) => format!("{} = {}", self.name(n), self.value(v)),
                Check::Absent(n) => format!("attribute_not_exists({})", self.name(n)),
            })
            .collect();
        Some(parts.join(" AND "))
    }
    fn update(&mut self, set: &[(String, Attr)], remove: &[String]) -> String {
        let mut out = String::new();
        if !set.is_empty() {
            let s: Vec<String> = set.iter().map(|(k, v)| format!("{} = {}", self.name(k), self.value(v))).collect();
            out.push_str("SET ");
            out.push_str(&s.join(", "));
        }
        if !remove.is_empty() {
            let r: Vec<String> = remove.iter().map(|k| self.name(k)).collect();
            if !out.is_empty() {
                out.push(' ');
            }
            out.push_str("REMOVE ");
            out.push_str(&r.join(", "));
        }
        out
    }
    fn names(&self) -> Option<HashMap<String, String>> {
        (!self.names.is_empty()).then(|| self.names.clone())
    }
    fn values(&self) -> Option<HashMap<String, AttributeValue>> {
        (!self.values.is_empty()).then(|| self.values.clone())
    }
}

fn build_err(e: aws_sdk_dynamodb::error::BuildError) -> StoreError {
    StoreError::Invalid(e.to_string())
}

fn transact_item(table: &str, op: &Write) -> Result<TransactWriteItem, StoreError> {
    let mut x = Expr::default();
    let b = TransactWriteItem::builder();
    Ok(match op {
        Write::Put { item, cond } => {
            let c = x.condition(cond);
            b.put(
                Put::builder()
                    .table_name(table)
                    .set_item(Some(item.iter().map(|(k, v)| (k.clone(), to_av(v))).collect()))
                    .set_condition_expression(c)
                    .set_expression_attribute_names(x.names())
                    .set_expression_attribute_values(x.values())
                    .build()
                    .map_err(build_err)?,
            )
            .build()
        }
        Write::Update { key, set, remove, cond } => {
            let u = x.update(set, remove);
            let c = x.condition(cond);
            b.update(
                Update::builder()
                    .table_name(table)
                    .set_key(Some(key_map(key)))
                    .update_expression(u)
                    .set_condition_expression(c)
                    .set_expression_attribute_names(x.names())
                    .set_expression_attribute_values(x.values())
                    .build()
                    .map_err(build_err)?,
            )
            .build()
        }
        Write::Delete { key, cond } => {
            let c = x.condition(cond);
            b.delete(
                Delete::builder()
                    .table_name(table)
                    .set_key(Some(key_map(key)))
                    .set_condition_expression(c)
                    .set_expression_attribute_names(x.names())
                    .set_expression_attribute_values(x.values())
                    .build()
                    .map_err(build_err)?,
            )
            .build()
        }
        Write::Check { key, cond } => {
            let c = x.condition(cond).ok_or_else(|| StoreError::Invalid("a check needs a condition".into()))?;
            b.condition_check(
                ConditionCheck::builder()
                    .table_name(table)
                    .set_key(Some(key_map(key)))
                    .condition_expression(c)
                    .set_expression_attribute_names(x.names())
                    .set_expression_attribute_values(x.values())
                    .build()
                    .map_err(build_err)?,
            )
            .build()
        }
    })
}

/// Any SDK error that has no variant of its own here: throttling and service faults are
/// "unavailable" (retryable by the caller), a rejected request is "invalid".
fn map_other<E: ProvideErrorMetadata, R>(e: SdkError<E, R>) -> StoreError {
    match e.code() {
        // A request the store refuses, or a table that is not there: a bug or a misconfiguration
        // to fix, not an outage to wait out.
        Some("ValidationException") | Some("SerializationException") | Some("ResourceNotFoundException") => {
            StoreError::Invalid(e.code().unwrap_or_default().to_owned())
        }
        Some("ConditionalCheckFailedException") => StoreError::ConditionFailed { index: 0 },
        Some("TransactionConflictException") | Some("TransactionInProgressException") => StoreError::Conflict,
        Some(code) => StoreError::Unavailable(code.to_owned()),
        None => StoreError::Unavailable(
            match e {
                SdkError::TimeoutError(_) => "timeout",
                SdkError::DispatchFailure(_) => "dispatch failure",
                SdkError::ResponseError(_) => "unreadable response",
                _ => "unknown failure",
            }
            .to_owned(),
        ),
    }
}

type AvMap = HashMap<String, AttributeValue>;

/// Every page of a Query or Scan: `send` asks for the page after a key, `split` takes its
/// items and the key of the next.
async fn all_pages<P, E, R, Fut>(
    send: impl Fn(Option<AvMap>) -> Fut,
    split: impl Fn(P) -> (Option<Vec<AvMap>>, Option<AvMap>),
) -> Result<Vec<Item>, StoreError>
where
    Fut: std::future::Future<Output = Result<P, SdkError<E, R>>>,
    E: ProvideErrorMetadata,
{
    let mut out = Vec::new();
    let mut start = None;
    loop {
        let (items, next) = split(send(start).await.map_err(map_other)?);
        out.extend(items.unwrap_or_default().into_iter().map(from_item));
        match next {
            Some(k) if !k.is_empty() => start = Some(k),
            _ => return Ok(out),
        }
    }
}

#[async_trait]
impl Store for DynamoStore {
    async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key_map(key)))
            .consistent_read(true)
            .send()
            .await
            .map_err(map_other)?;
        Ok(out.item.map(from_item))
    }

    async fn query(&self, pk: &str, sk_prefix: &str) -> Result<Vec<Item>, StoreError> {
        let mut x = Expr::default();
        let pk_name = x.name(PARTITION_KEY);
        let pk_value = x.value(&Attr::S(pk.to_owned()));
        let mut cond = format!("{pk_name} = {pk_value}");
        if !sk_prefix.is_empty() {
            let sk_name = x.name(SORT_KEY);
            let prefix = x.value(&Attr::S(sk_prefix.to_owned()));
            cond.push_str(&format!(" AND begins_with({sk_name}, {prefix})"));
        }
        all_pages(
            |start| {
                self.client
                    .query()
                    .table_name(&self.table)
                    .key_condition_expression(&cond)
                    .set_expression_attribute_names(x.names())
                    .set_expression_attribute_values(x.values())
                    .consistent_read(true)
                    .set_exclusive_start_key(start)
                    .send()
            },
            |p| (p.items, p.last_evaluated_key),
        )
        .await
    }

    async fn write(&self, op: Write) -> Result<(), StoreError> {
        let mut x = Expr::default();
        let sent = match &op {
            Write::Put { item, cond } => {
                let c = x.condition(cond);
                self.client
                    .put_item()
                    .table_name(&self.table)
                    .set_item(Some(item.iter().map(|(k, v)| (k.clone(), to_av(v))).collect()))
                    .set_condition_expression(c)
                    .set_expression_attribute_names(x.names())
                    .set_expression_attribute_values(x.values())
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(map_other)
            }
            Write::Update { key, set, remove, cond } => {
                let u = x.update(set, remove);
                let c = x.condition(cond);
                self.client
                    .update_item()
                    .table_name(&self.table)
                    .set_key(Some(key_map(key)))
                    .update_expression(u)
                    .set_condition_expression(c)
                    .set_expression_attribute_names(x.names())
                    .set_expression_attribute_values(x.values())
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(map_other)
            }
            Write::Delete { key, cond } => {
                let c = x.condition(cond);
                self.client
                    .delete_item()
                    .table_name(&self.table)
                    .set_key(Some(key_map(key)))
                    .set_condition_expression(c)
                    .set_expression_attribute_names(x.names())
                    .set_expression_attribute_values(x.values())
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(map_other)
            }
            Write::Check { .. } => {
                return Err(StoreError::Invalid("a condition check only exists inside a transaction".into()))
            }
        };
        sent
    }

    async fn scan_all(&self) -> Result<Vec<Item>, StoreError> {
        all_pages(
            |start| {
                self.client.scan().table_name(&self.table).consistent_read(true).set_exclusive_start_key(start).send()
            },
            |p| (p.items, p.last_evaluated_key),
        )
        .await
    }

    async fn transact(&self, ops: Vec<Write>) -> Result<(), StoreError> {
        validate_transaction(&ops)?;
        let items = ops.iter().map(|op| transact_item(&self.table, op)).collect::<Result<Vec<_>, _>>()?;
        let res = self.client.transact_write_items().set_transact_items(Some(items)).send().await;
        match res {
            Ok(_) => Ok(()),
            Err(e) => {
                use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError as T;
                match e.as_service_error() {
                    Some(T::TransactionCanceledException(c)) => {
                        let reasons = c.cancellation_reasons();
                        if let Some(index) = reasons.iter().position(|r| r.code() == Some("ConditionalCheckFailed")) {
                            Err(StoreError::ConditionFailed { index })
                        } else if reasons.iter().any(|r| r.code() == Some("TransactionConflict")) {
                            Err(StoreError::Conflict)
                        } else if reasons.iter().any(|r| r.code() == Some("ValidationError")) {
                            Err(StoreError::Invalid("ValidationError".into()))
                        } else {
                            Err(StoreError::Unavailable("transaction cancelled".into()))
                        }
                    }
                    Some(T::TransactionInProgressException(_)) => Err(StoreError::Conflict),
                    _ => Err(map_other(e)),
                }
            }
        }
    }
}
