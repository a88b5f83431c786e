//! How values cross to PostgreSQL: a statement's parameters bound in their native types (lists as
//! arrays), and a row's columns read by name.

use std::error::Error;

use bytes::BytesMut;
use tokio_postgres::types::{IsNull, ToSql, Type};
use tokio_postgres::Row;
use uuid::Uuid;

use crate::backend::{Arg, Fields};
use crate::StoreError;

impl ToSql for Arg<'_> {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, Box<dyn Error + Sync + Send>> {
        match self {
            Arg::I64(v) => v.to_sql(ty, out),
            Arg::Str(v) => v.to_sql(ty, out),
            Arg::Uuid(v) => v.to_sql(ty, out),
            Arg::I64s(v) => v.to_sql(ty, out),
            Arg::Strs(v) => v.to_sql(ty, out),
            Arg::Strings(v) => v.to_sql(ty, out),
            Arg::MaybeStrs(v) => v.to_sql(ty, out),
            Arg::Uuids(v) => v.to_sql(ty, out),
        }
    }

    /// Each variant's own type is checked in `to_sql_checked`.
    fn accepts(_: &Type) -> bool {
        true
    }

    fn to_sql_checked(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, Box<dyn Error + Sync + Send>> {
        match self {
            Arg::I64(v) => v.to_sql_checked(ty, out),
            Arg::Str(v) => v.to_sql_checked(ty, out),
            Arg::Uuid(v) => v.to_sql_checked(ty, out),
            Arg::I64s(v) => v.to_sql_checked(ty, out),
            Arg::Strs(v) => v.to_sql_checked(ty, out),
            Arg::Strings(v) => v.to_sql_checked(ty, out),
            Arg::MaybeStrs(v) => v.to_sql_checked(ty, out),
            Arg::Uuids(v) => v.to_sql_checked(ty, out),
        }
    }
}

impl Fields for Row {
    fn i64(&self, col: &str) -> Result<i64, StoreError> {
        Ok(self.try_get(col)?)
    }
    fn opt_i64(&self, col: &str) -> Result<Option<i64>, StoreError> {
        Ok(self.try_get(col)?)
    }
    fn string(&self, col: &str) -> Result<String, StoreError> {
        Ok(self.try_get(col)?)
    }
    fn opt_string(&self, col: &str) -> Result<Option<String>, StoreError> {
        Ok(self.try_get(col)?)
    }
    fn uuid(&self, col: &str) -> Result<Uuid, StoreError> {
        Ok(self.try_get(col)?)
    }
    fn opt_uuid(&self, col: &str) -> Result<Option<Uuid>, StoreError> {
        Ok(self.try_get(col)?)
    }
    fn bool(&self, col: &str) -> Result<bool, StoreError> {
        Ok(self.try_get(col)?)
    }
}
