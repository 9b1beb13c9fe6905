//! Query string access that handles repeated keys (`names=a&names=b`) and
//! Docker's booleans (`1`, `true`, `True`).

use crate::ApiError;

#[derive(Debug, Default, Clone)]
pub struct Query(Vec<(String, String)>);

impl Query {
    pub fn parse(raw: Option<&str>) -> Result<Query, ApiError> {
        match raw {
            None => Ok(Query::default()),
            Some(q) => serde_urlencoded::from_str(q)
                .map(Query)
                .map_err(|e| ApiError::bad_request(format!("invalid query string: {e}"))),
        }
    }
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
    pub fn all(&self, key: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .collect()
    }
    pub fn bool(&self, key: &str) -> Result<bool, ApiError> {
        match self.get(key) {
            None | Some("") | Some("0") | Some("false") | Some("False") | Some("FALSE") => {
                Ok(false)
            }
            Some("1") | Some("true") | Some("True") | Some("TRUE") => Ok(true),
            Some(other) => Err(ApiError::bad_request(format!(
                "invalid boolean for {key}: {other:?}"
            ))),
        }
    }

    /// `h` and `w` of a resize request (terminal rows and columns).
    pub fn size(&self) -> Result<(u16, u16), ApiError> {
        let dim = |k: &str, what: &str| {
            self.get(k)
                .unwrap_or("0")
                .parse::<u16>()
                .map_err(|_| ApiError::bad_request(format!("invalid {what}")))
        };
        Ok((dim("h", "height")?, dim("w", "width")?))
    }
}
