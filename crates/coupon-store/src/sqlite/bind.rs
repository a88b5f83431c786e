//! How values cross to SQLite: a statement's parameters (lists as JSON arrays, read with
//! `json_each`), and a row's columns read by name.

use std::sync::Arc;

use rusqlite::types::{Null, ToSqlOutput, Value, ValueRef};
use uuid::Uuid;

use crate::backend::{Arg, Fields};
use crate::StoreError;

impl rusqlite::ToSql for Arg<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        let json = |v: Result<String, serde_json::Error>| {
            v.map(|s| ToSqlOutput::Owned(Value::Text(s)))
                .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))
        };
        match *self {
            Arg::I64(Some(v)) => Ok(ToSqlOutput::from(v)),
            Arg::Str(Some(v)) => Ok(ToSqlOutput::Borrowed(ValueRef::Text(v.as_bytes()))),
            Arg::Uuid(Some(v)) => Ok(ToSqlOutput::from(v.to_string())),
            Arg::I64(None) | Arg::Str(None) | Arg::Uuid(None) => Ok(ToSqlOutput::from(Null)),
            Arg::I64s(v) => json(serde_json::to_string(v)),
            Arg::Strs(v) => json(serde_json::to_string(v)),
            Arg::Strings(v) => json(serde_json::to_string(v)),
            Arg::MaybeStrs(v) => json(serde_json::to_string(v)),
            Arg::Uuids(v) => json(serde_json::to_string(v)),
        }
    }
}

/// A row read out of its statement, so it can outlive it.
pub(crate) struct SqliteRow {
    pub(super) names: Arc<[String]>,
    pub(super) values: Vec<Value>,
}

impl SqliteRow {
    fn value(&self, col: &str) -> Result<&Value, StoreError> {
        self.names
            .iter()
            .position(|n| n == col)
            .map(|i| &self.values[i])
            .ok_or_else(|| StoreError::Corrupt(format!("no column {col}")))
    }

    fn opt<T>(&self, col: &str, read: impl Fn(&Value) -> Option<T>) -> Result<Option<T>, StoreError> {
        match self.value(col)? {
            Value::Null => Ok(None),
            v => read(v)
                .map(Some)
                .ok_or_else(|| StoreError::Corrupt(format!("column {col}: {v:?}"))),
        }
    }

    fn req<T>(&self, col: &str, read: impl Fn(&Value) -> Option<T>) -> Result<T, StoreError> {
        self.opt(col, read)?
            .ok_or_else(|| StoreError::Corrupt(format!("column {col} is null")))
    }
}

fn int(v: &Value) -> Option<i64> {
    match v {
        Value::Integer(i) => Some(*i),
        _ => None,
    }
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::Text(s) => Some(s.clone()),
        _ => None,
    }
}

fn uuid(v: &Value) -> Option<Uuid> {
    match v {
        Value::Text(s) => Uuid::parse_str(s).ok(),
        _ => None,
    }
}

impl Fields for SqliteRow {
    fn i64(&self, col: &str) -> Result<i64, StoreError> {
        self.req(col, int)
    }
    fn opt_i64(&self, col: &str) -> Result<Option<i64>, StoreError> {
        self.opt(col, int)
    }
    fn string(&self, col: &str) -> Result<String, StoreError> {
        self.req(col, text)
    }
    fn opt_string(&self, col: &str) -> Result<Option<String>, StoreError> {
        self.opt(col, text)
    }
    fn uuid(&self, col: &str) -> Result<Uuid, StoreError> {
        self.req(col, uuid)
    }
    fn opt_uuid(&self, col: &str) -> Result<Option<Uuid>, StoreError> {
        self.opt(col, uuid)
    }
    fn bool(&self, col: &str) -> Result<bool, StoreError> {
        self.req(col, int).map(|v| v != 0)
    }
}
