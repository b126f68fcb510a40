//! Typed Prometheus query results and the parser of the HTTP API's JSON envelope.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::QueryError;

/// Labels of one series (`metric` in the API).
pub type Labels = BTreeMap<String, String>;

/// One instant sample of a vector.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    pub labels: Labels,
    /// Unix time in seconds, as Prometheus sends it.
    pub timestamp: f64,
    /// The value; `NaN`, `+Inf` and `-Inf` are kept as the matching f64.
    pub value: f64,
}

/// One series of a matrix.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RangeSeries {
    pub labels: Labels,
    /// `(timestamp, value)` pairs in time order.
    pub values: Vec<(f64, f64)>,
}

/// The result of a query, one variant per `resultType`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data", rename_all = "camelCase")]
pub enum QueryResult {
    /// Zero or more series with one sample each.
    Vector(Vec<Sample>),
    /// `(timestamp, value)`.
    Scalar(f64, f64),
    /// Series with several samples each (range vectors, `query_range`).
    Matrix(Vec<RangeSeries>),
    /// `(timestamp, text)`.
    String(f64, String),
}

impl QueryResult {
    /// A one-sample vector without labels, as `sum(...)` returns (handy in tests and fakes).
    pub fn single(value: f64) -> Self {
        QueryResult::Vector(vec![Sample {
            labels: Labels::new(),
            timestamp: 0.0,
            value,
        }])
    }

    /// A one-sample vector without labels at a given timestamp.
    pub fn single_at(timestamp: f64, value: f64) -> Self {
        QueryResult::Vector(vec![Sample {
            labels: Labels::new(),
            timestamp,
            value,
        }])
    }

    /// Name of the result type as Prometheus spells it.
    pub fn type_name(&self) -> &'static str {
        match self {
            QueryResult::Vector(_) => "vector",
            QueryResult::Scalar(..) => "scalar",
            QueryResult::Matrix(_) => "matrix",
            QueryResult::String(..) => "string",
        }
    }
}

/// A successful answer: the result plus any warnings/infos the server attached.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueryResponse {
    pub result: QueryResult,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub infos: Vec<String>,
}

impl From<QueryResult> for QueryResponse {
    fn from(result: QueryResult) -> Self {
        QueryResponse {
            result,
            warnings: Vec::new(),
            infos: Vec::new(),
        }
    }
}

#[derive(Deserialize)]
struct Envelope {
    status: String,
    data: Option<RawData>,
    #[serde(rename = "errorType")]
    error_type: Option<String>,
    error: Option<String>,
    #[serde(default)]
    warnings: Vec<String>,
    #[serde(default)]
    infos: Vec<String>,
}

#[derive(Deserialize)]
#[serde(tag = "resultType", content = "result", rename_all = "lowercase")]
enum RawData {
    Vector(Vec<RawSample>),
    Scalar((f64, String)),
    Matrix(Vec<RawSeries>),
    String((f64, String)),
}

#[derive(Deserialize)]
struct RawSample {
    #[serde(default)]
    metric: Labels,
    value: Option<(f64, String)>,
}

#[derive(Deserialize)]
struct RawSeries {
    #[serde(default)]
    metric: Labels,
    #[serde(default)]
    values: Vec<(f64, String)>,
}

/// Parses a sample value; Prometheus sends numbers as strings ("NaN", "+Inf", "-Inf" included).
pub fn parse_value(text: &str) -> Result<f64, QueryError> {
    text.parse::<f64>().map_err(|_| QueryError::Decode {
        message: format!("sample value {text:?} is not a number"),
        body: String::new(),
    })
}

const SNIPPET: usize = 200;

fn snippet(body: &str) -> String {
    body.chars().take(SNIPPET).collect()
}

/// Parses a response body of `/api/v1/query` or `/api/v1/query_range`.
/// `http_status` is kept in the error when the body is a Prometheus error envelope.
pub fn parse_response(body: &str, http_status: u16) -> Result<QueryResponse, QueryError> {
    let env: Envelope = serde_json::from_str(body).map_err(|e| {
        if (500..600).contains(&http_status) {
            QueryError::Http {
                status: http_status,
                body: snippet(body),
            }
        } else {
            QueryError::Decode {
                message: format!("not a Prometheus API answer: {e}"),
                body: snippet(body),
            }
        }
    })?;
    if env.status != "success" {
        return Err(QueryError::Prometheus {
            error_type: env.error_type.unwrap_or_else(|| "unknown".into()),
            error: env
                .error
                .unwrap_or_else(|| format!("status {:?}", env.status)),
            http_status,
        });
    }
    let data = env.data.ok_or_else(|| QueryError::Decode {
        message: "success answer without data".into(),
        body: snippet(body),
    })?;
    let result = match data {
        RawData::Vector(samples) => {
            let mut out = Vec::with_capacity(samples.len());
            for s in samples {
                let (timestamp, text) = s.value.ok_or_else(|| {
                    QueryError::Unsupported(
                        "vector sample without a float value (native histogram?)".into(),
                    )
                })?;
                out.push(Sample {
                    labels: s.metric,
                    timestamp,
                    value: parse_value(&text)?,
                });
            }
            QueryResult::Vector(out)
        }
        RawData::Scalar((t, v)) => QueryResult::Scalar(t, parse_value(&v)?),
        RawData::String((t, v)) => QueryResult::String(t, v),
        RawData::Matrix(series) => {
            let mut out = Vec::with_capacity(series.len());
            for s in series {
                let values = s
                    .values
                    .iter()
                    .map(|(t, v)| parse_value(v).map(|v| (*t, v)))
                    .collect::<Result<Vec<_>, _>>()?;
                out.push(RangeSeries {
                    labels: s.metric,
                    values,
                });
            }
            QueryResult::Matrix(out)
        }
    };
    Ok(QueryResponse {
        result,
        warnings: env.warnings,
        infos: env.infos,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // Bodies below are the shapes recorded from Prometheus 2.42 in TESTBED.md section 5.
    #[test]
    fn vector_without_labels() {
        let r = parse_response(
            r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1795563156.128,"0.00995"]}]}}"#,
            200,
        )
        .unwrap();
        assert_eq!(
            r.result,
            QueryResult::Vector(vec![Sample {
                labels: Labels::new(),
                timestamp: 1795563156.128,
                value: 0.00995
            }])
        );
        assert!(r.warnings.is_empty());
    }

    #[test]
    fn vector_grouped_and_empty() {
        let r = parse_response(
            r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"version":"stable"},"value":[1795563156.118,"121.34849523809524"]},{"metric":{"version":"canary"},"value":[1795563156.118,"13.603466666666668"]}]}}"#,
            200,
        )
        .unwrap();
        let QueryResult::Vector(v) = r.result else {
            panic!("not a vector")
        };
        assert_eq!(v.len(), 2);
        assert_eq!(v[1].labels["version"], "canary");
        assert_eq!(v[1].value, 13.603466666666668);
        let e = parse_response(
            r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#,
            200,
        )
        .unwrap();
        assert_eq!(e.result, QueryResult::Vector(vec![]));
    }

    #[test]
    fn nan_and_infinities() {
        let r = parse_response(
            r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1795563197.075,"NaN"]}]}}"#,
            200,
        )
        .unwrap();
        let QueryResult::Vector(v) = r.result else {
            panic!()
        };
        assert!(v[0].value.is_nan());
        let s = parse_response(r#"{"status":"success","data":{"resultType":"scalar","result":[1795563156.153,"+Inf"]}}"#, 200).unwrap();
        assert_eq!(s.result, QueryResult::Scalar(1795563156.153, f64::INFINITY));
        let s = parse_response(
            r#"{"status":"success","data":{"resultType":"scalar","result":[1.5,"-Inf"]}}"#,
            200,
        )
        .unwrap();
        assert_eq!(s.result, QueryResult::Scalar(1.5, f64::NEG_INFINITY));
    }

    #[test]
    fn matrix_and_string() {
        let r = parse_response(
            r#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{"__name__":"http_requests_total","code":"200","version":"canary"},"values":[[1795563153.900,"161"],[1795563154.900,"181"],[1795563155.900,"201"]]}]}}"#,
            200,
        )
        .unwrap();
        let QueryResult::Matrix(m) = r.result else {
            panic!()
        };
        assert_eq!(
            m[0].values,
            vec![
                (1795563153.9, 161.0),
                (1795563154.9, 181.0),
                (1795563155.9, 201.0)
            ]
        );
        let s = parse_response(
            r#"{"status":"success","data":{"resultType":"string","result":[12.0,"hello"]}}"#,
            200,
        )
        .unwrap();
        assert_eq!(s.result, QueryResult::String(12.0, "hello".into()));
    }

    #[test]
    fn warnings_and_infos_are_kept() {
        let r = parse_response(
            r#"{"status":"success","warnings":["w1"],"infos":["i1"],"data":{"resultType":"vector","result":[]}}"#,
            200,
        )
        .unwrap();
        assert_eq!(r.warnings, vec!["w1"]);
        assert_eq!(r.infos, vec!["i1"]);
    }

    #[test]
    fn error_envelope_keeps_type_and_message() {
        let e = parse_response(
            r#"{"status":"error","errorType":"bad_data","error":"invalid parameter \"query\": 1:16: parse error: unclosed left parenthesis"}"#,
            400,
        )
        .unwrap_err();
        match e {
            QueryError::Prometheus {
                error_type,
                error,
                http_status,
            } => {
                assert_eq!(error_type, "bad_data");
                assert!(error.contains("unclosed left parenthesis"));
                assert_eq!(http_status, 400);
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn non_json_bodies_are_typed_errors() {
        assert!(matches!(
            parse_response("<html>oops</html>", 200),
            Err(QueryError::Decode { .. })
        ));
        assert!(matches!(
            parse_response("Bad Gateway", 502),
            Err(QueryError::Http { status: 502, .. })
        ));
        assert!(matches!(
            parse_response(
                r#"{"status":"success","data":{"resultType":"scalar","result":[1,"abc"]}}"#,
                200
            ),
            Err(QueryError::Decode { .. })
        ));
        assert!(matches!(
            parse_response(
                r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"histogram":[1,{}]}]}}"#,
                200
            ),
            Err(QueryError::Unsupported(_))
        ));
    }
}
