//! The `filters` query parameter: JSON, either `{"key":["v1","v2"]}` or the
//! older `{"key":{"v1":true}}` form. Unknown keys are refused per endpoint,
//! naming the key, as dockerd does.

use std::collections::BTreeMap;

use crate::ApiError;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Filters(pub BTreeMap<String, Vec<String>>);

impl Filters {
    pub fn parse(raw: Option<&str>) -> Result<Filters, ApiError> {
        let raw = match raw {
            None => return Ok(Filters::default()),
            Some(r) if r.trim().is_empty() => return Ok(Filters::default()),
            Some(r) => r,
        };
        let v: serde_json::Value = serde_json::from_str(raw)
            .map_err(|e| ApiError::bad_request(format!("invalid filters {raw:?}: {e}")))?;
        let obj = v.as_object().ok_or_else(|| {
            ApiError::bad_request(format!("invalid filters {raw:?}: expected a JSON object"))
        })?;
        let mut out = BTreeMap::new();
        for (k, v) in obj {
            let values: Vec<String> = match v {
                serde_json::Value::Array(a) => a
                    .iter()
                    .map(|x| {
                        x.as_str().map(str::to_string).ok_or_else(|| {
                            ApiError::bad_request(format!(
                                "invalid filter {k}: values must be strings"
                            ))
                        })
                    })
                    .collect::<Result<_, _>>()?,
                serde_json::Value::Object(m) => m
                    .iter()
                    .filter(|(_, b)| b.as_bool() == Some(true))
                    .map(|(s, _)| s.clone())
                    .collect(),
                _ => {
                    return Err(ApiError::bad_request(format!(
                        "invalid filter {k}: expected a list"
                    )))
                }
            };
            out.insert(k.clone(), values);
        }
        Ok(Filters(out))
    }

    /// Refuses keys outside `allowed`.
    pub fn only(&self, allowed: &[&str]) -> Result<(), ApiError> {
        for k in self.0.keys() {
            if !allowed.contains(&k.as_str()) {
                return Err(ApiError::bad_request(format!("invalid filter '{k}'")));
            }
        }
        Ok(())
    }

    pub fn get(&self, key: &str) -> &[String] {
        self.0.get(key).map(Vec::as_slice).unwrap_or(&[])
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_forms_parse() {
        let a = Filters::parse(Some(r#"{"dangling":["true"],"label":["a=b"]}"#)).unwrap();
        assert_eq!(a.get("dangling"), ["true"]);
        let b = Filters::parse(Some(r#"{"reference":{"busybox":true}}"#)).unwrap();
        assert_eq!(b.get("reference"), ["busybox"]);
        assert!(Filters::parse(Some("{")).is_err());
        assert!(b
            .only(&["dangling"])
            .unwrap_err()
            .message
            .contains("reference"));
    }
}
